"""Training examples from served recommendations and their feedback (the dataset's derivation).

`build_examples` turns a window's recommendations, normalized feedback and serving pools into one
row per served recommendation: φ as served, outcomes summed inside their attribution windows,
labels without retractions, nothing a guard held back, and the stable holdout split. `build` wraps
it into content-addressed FeedbackDataset versions; `rollout` and `export` reuse the expressions.
"""

from __future__ import annotations

import zlib
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.scoring.features import FEATURES

OUTCOME_COLUMNS = {
    "impression": "impressions",
    "engagement": "engagements",
    "click": "clicks",
    "conversion": "conversions",
}
SERVED_COLUMNS = (
    "recommendation_id",
    "request_id",
    "campaign_id",
    "creator_id",
    "rank",
    "score",
    "propensity",
    "weights_version",
    "served_at",
)


def in_holdout(request_ids: pl.Series, share: float) -> pl.Series:
    """A stable pseudo-random split by request id (CRC-32, not Python's salted hash)."""
    buckets = np.array([zlib.crc32(r.encode()) % 10_000 for r in request_ids.to_list()], dtype=np.int64)
    return pl.Series("holdout", buckets < round(share * 10_000))


def serving_pools(lake: Lake, days: list[date]) -> pl.DataFrame:
    """Every eligible (serving day, campaign, creator) with φ as serving computed it that day."""
    frames = []
    for day in days:
        try:
            context = ScoringContext.from_lake(lake, day)
        except FileNotFoundError:
            continue
        for campaign_id in context.campaigns:
            ids, phi = context.pool(campaign_id)
            frames.append(
                pl.DataFrame(
                    {"serving_day": day, "campaign_id": campaign_id, "creator_id": ids}
                ).with_columns(pl.DataFrame(phi, schema=list(FEATURES), orient="row"))
            )
    schema = {"serving_day": pl.Date, "campaign_id": pl.String, "creator_id": pl.String} | {
        f: pl.Float64 for f in FEATURES
    }
    return pl.concat([pl.DataFrame(schema=schema), *frames], how="vertical_relaxed").cast(schema)  # type: ignore[arg-type]


def feedback_masks() -> list[pl.Expr]:
    """Per feedback row: its contribution to each outcome sum and to the label columns.

    An outcome counts only inside its attribution window (``event_at <= attribution_closes_at``).
    Masking rows first and aggregating with plain sums is much faster than filters inside `agg`.
    """
    in_window = pl.col("event_at") <= pl.col("attribution_closes_at")
    is_label = pl.col("kind") == "label"
    return [
        *(
            pl.when((pl.col("event_type") == e) & in_window).then(pl.col("value")).otherwise(0.0).alias(c)
            for e, c in OUTCOME_COLUMNS.items()
        ),
        is_label.alias("_label"),
        pl.when(is_label).then(pl.col("value")).alias("_useful"),
        pl.when(is_label).then(pl.col("confidence")).alias("_confidence"),
    ]


def feedback_aggregates() -> list[pl.Expr]:
    """Per recommendation, over `feedback_masks`: outcome sums, label count, share useful, confidence."""
    return [
        *(pl.col(c).sum() for c in OUTCOME_COLUMNS.values()),
        pl.col("_label").sum().cast(pl.Int64).alias("n_labels"),
        pl.col("_useful").mean().alias("label_useful"),
        pl.col("_confidence").mean().alias("label_confidence"),
    ]


def drop_retracted(feedback: pl.LazyFrame, retractions: pl.LazyFrame | None) -> pl.LazyFrame:
    """``feedback`` without the labels that a retraction (`label_retractions` rows) names."""
    if retractions is None:
        return feedback
    retracted = retractions.select(pl.format("label:{}", "label_id").alias("feedback_id")).unique()
    return feedback.join(retracted, on="feedback_id", how="anti", maintain_order="left")


def drop_held_back(feedback: pl.LazyFrame, held_back: pl.LazyFrame | None) -> pl.LazyFrame:
    """``feedback`` without the rows a guard held back (`held_back_feedback` rows)."""
    if held_back is None:
        return feedback
    held = held_back.select("feedback_id").unique()
    return feedback.join(held, on="feedback_id", how="anti", maintain_order="left")


def drop_withheld(
    feedback: pl.LazyFrame, retractions: pl.LazyFrame | None, held_back: pl.LazyFrame | None
) -> pl.LazyFrame:
    """``feedback`` without retracted labels and without the rows a guard held back."""
    return drop_held_back(drop_retracted(feedback, retractions), held_back)


def build_examples(
    recommendations: pl.LazyFrame,
    feedback: pl.LazyFrame,
    pools: pl.DataFrame,
    days: list[date],
    holdout_share: float,
    retractions: pl.LazyFrame | None = None,
    held_back: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """One row per recommendation served on ``days``, with φ as served, outcomes and labels.

    Labels named in ``retractions`` and rows a guard held back (``held_back``) are left out.
    ``outcome_rows`` and ``late_outcome_rows`` count each recommendation's outcome rows and those
    that arrived after their attribution window closed (left out of the sums).
    """
    recs = (
        recommendations.select(SERVED_COLUMNS)
        .with_columns(pl.col("served_at").dt.date().alias("serving_day"))
        .filter(pl.col("serving_day").is_in(days))
        .unique("recommendation_id", keep="first")
    )
    served = feedback.join(recs.select("recommendation_id"), on="recommendation_id", how="semi")
    rows = drop_withheld(served, retractions, held_back).unique("feedback_id", keep="first")
    is_outcome = pl.col("kind") == "outcome"
    late = is_outcome & (pl.col("event_at") > pl.col("attribution_closes_at"))
    outcomes = (
        rows.select("recommendation_id", *feedback_masks(), is_outcome.alias("_outcome"), late.alias("_late"))
        .group_by("recommendation_id")
        .agg(
            *feedback_aggregates(),
            pl.col("_outcome").sum().cast(pl.Int64).alias("outcome_rows"),
            pl.col("_late").sum().cast(pl.Int64).alias("late_outcome_rows"),
        )
    )
    examples = (
        recs.join(outcomes, on="recommendation_id", how="left")
        .join(pools.lazy(), on=["serving_day", "campaign_id", "creator_id"], how="left")
        .with_columns(
            *(pl.col(c).fill_null(0.0) for c in OUTCOME_COLUMNS.values()),
            *(pl.col(c).fill_null(0) for c in ("n_labels", "outcome_rows", "late_outcome_rows")),
        )
        .sort("served_at", "request_id", "rank")
        .collect()
    )
    return examples.with_columns(in_holdout(examples["request_id"], holdout_share))


def empty_examples() -> pl.DataFrame:
    schema: dict[str, Any] = {
        "recommendation_id": pl.String,
        "request_id": pl.String,
        "campaign_id": pl.String,
        "creator_id": pl.String,
        "rank": pl.Int64,
        "score": pl.Float64,
        "propensity": pl.Float64,
        "weights_version": pl.String,
        "served_at": pl.Datetime("us", "UTC"),
        "serving_day": pl.Date,
        **{c: pl.Float64 for c in OUTCOME_COLUMNS.values()},
        "n_labels": pl.Int64,
        "label_useful": pl.Float64,
        "label_confidence": pl.Float64,
        "outcome_rows": pl.Int64,
        "late_outcome_rows": pl.Int64,
        **{f: pl.Float64 for f in FEATURES},
        "holdout": pl.Boolean,
    }
    return pl.DataFrame(schema=schema)
