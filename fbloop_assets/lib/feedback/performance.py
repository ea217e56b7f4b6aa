"""The creator's past conversion rate: the one component of φ that feedback itself supplies.

Every day, `creator_outcomes` sums the clicks and conversions that arrived for each creator
(inside their attribution windows). `creator_performance` adds up a trailing window of those
days and shrinks each creator's conversions per click towards the catalog's rate, with
``prior_clicks`` clicks of pseudo-evidence, so that a creator with three clicks and one
conversion is not mistaken for a star:

    smoothed = (conversions + prior_clicks * catalog_rate) / (clicks + prior_clicks)
    past_conversion_rate = clip(log2(smoothed / catalog_rate) / 2, -1, 1)

A creator without clicks gets 0, the same as an average one. Clicks and conversions are
counted as they arrive, so the most recent days hold conversions still to come; that lag is
the same for every creator and cancels in the ratio to the catalog's rate.
"""

from __future__ import annotations

import polars as pl

OUTCOMES_SCHEMA = {"creator_id": pl.String(), "clicks": pl.Float64(), "conversions": pl.Float64()}
PERFORMANCE_SCHEMA = OUTCOMES_SCHEMA | {
    "conversion_rate": pl.Float64(),
    "past_conversion_rate": pl.Float64(),
}


def creator_outcomes(feedback: pl.LazyFrame) -> pl.DataFrame:
    """Clicks and conversions per creator in one day of normalized feedback."""
    within_window = pl.col("event_at") <= pl.col("attribution_closes_at")
    return (
        feedback.filter(pl.col("event_type").is_in(["click", "conversion"]) & within_window)
        .group_by("creator_id")
        .agg(
            pl.col("value").filter(pl.col("event_type") == "click").sum().alias("clicks"),
            pl.col("value").filter(pl.col("event_type") == "conversion").sum().alias("conversions"),
        )
        .sort("creator_id")
        .collect()
        .cast(OUTCOMES_SCHEMA)  # type: ignore[arg-type]
    )


def creator_performance(outcomes: pl.LazyFrame, prior_clicks: float) -> pl.DataFrame:
    """Smoothed conversion rate and the φ component per creator, from a window of daily outcomes."""
    totals = (
        outcomes.group_by("creator_id").agg(pl.col("clicks").sum(), pl.col("conversions").sum()).collect()
    )
    clicks, conversions = float(totals["clicks"].sum()), float(totals["conversions"].sum())
    if not clicks or not conversions:
        return pl.DataFrame(schema=PERFORMANCE_SCHEMA)
    catalog_rate = conversions / clicks
    smoothed = (pl.col("conversions") + prior_clicks * catalog_rate) / (pl.col("clicks") + prior_clicks)
    return (
        totals.with_columns(smoothed.alias("conversion_rate"))
        .with_columns(
            ((pl.col("conversion_rate") / catalog_rate).log(2) / 2.0)
            .clip(-1.0, 1.0)
            .alias("past_conversion_rate")
        )
        .sort("creator_id")
        .cast(PERFORMANCE_SCHEMA)  # type: ignore[arg-type]
    )
