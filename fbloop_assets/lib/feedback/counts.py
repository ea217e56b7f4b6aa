"""Outcomes as counts, for `aggregated` privacy mode: no feedback row stands for one signal.

After deduplication (a signal id already delivered on an earlier day of the recommendation
lookback is a duplicate too, since the per-signal id does not survive into the warehouse), a
day's outcomes of one recommendation, event type and source collapse into one row: ``value`` the
sum, ``event_at`` the latest, those inside and those after their attribution window apart, with
the id ``agg:<day>:<recommendation>:<event type>:<source>:<in|late>``. The rows folded away are
counted (``collapsed_into_counts``). Datasets read outcomes as sums per recommendation inside
the window, so they hold the same numbers as from the rows themselves.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

GROUP = ("recommendation_id", "event_type", "source")


def first_deliveries(signals: pl.LazyFrame, earlier: pl.LazyFrame | None) -> pl.LazyFrame:
    """``signals`` once per ``signal_id``, without those ``earlier`` (a ``signal_id`` column) holds."""
    once = signals.unique("signal_id", keep="first", maintain_order=True)
    if earlier is None:
        return once
    seen = earlier.select(pl.col("signal_id").cast(pl.String)).unique()
    return once.join(seen, on="signal_id", how="anti", maintain_order="left")


def as_counts(outcomes: pl.LazyFrame, day: date, day_end: datetime) -> tuple[pl.LazyFrame, int]:
    """One row per recommendation, event type, source and side of the window; and the rows folded.

    ``outcomes`` has the feedback schema's outcome columns (``attribution_complete`` is judged
    again at ``day_end``). Collected here: counts are small, and the fold must be counted.
    """
    rows = outcomes.collect()
    columns = rows.columns
    late = pl.col("event_at") > pl.col("attribution_closes_at")
    kept_first = [c for c in columns if c not in (*GROUP, "feedback_id", "value", "event_at")]
    counts = (
        rows.with_columns(pl.when(late).then(pl.lit("late")).otherwise(pl.lit("in")).alias("_side"))
        .group_by(*GROUP, "_side", maintain_order=True)
        .agg(pl.col("value").sum(), pl.col("event_at").max(), *(pl.col(c).first() for c in kept_first))
        .with_columns(
            pl.format(f"agg:{day.isoformat()}:{{}}:{{}}:{{}}:{{}}", *GROUP, "_side").alias("feedback_id"),
            (pl.col("attribution_closes_at") <= pl.lit(day_end)).alias("attribution_complete"),
        )
        .select(columns)
    )
    return counts.lazy(), rows.height - counts.height
