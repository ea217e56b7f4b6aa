"""Guards on the day's incoming feedback: label quality and outcome anomalies.

Both read `normalized_feedback` rows (the day's and those of the trailing days before it) and
name the rows to hold back; the caller stores them flagged (`held_back_feedback`), and datasets
leave them out. Nothing is deleted: an analyst can inspect the rows and release them.

**Label quality.** A reviewer *floods* a day when

- their labels are more than ``flood_share`` of the day's (and at least ``flood_min_labels``) and
  more than ``flood_jump`` times their own median daily count over the trailing days (sudden: a
  steady, prolific reviewer is not a flood), or
- on items other reviewers labeled too, their agreement with those peers lies more than
  ``agreement_gap`` below the median agreement of the other reviewers (at least ``min_shared``
  shared items): a careless or adversarial labeler.

Their labels of the day are held back and the check fails. Krippendorff's alpha (nominal) over
the items labeled by two or more reviewers in the trailing days and the day, without the
held-back labels, then grades the rest: ERROR below ``alpha_fail``, WARN below ``alpha_warn`` or
when fewer than ``min_double_labeled`` items were labeled twice (not measurable).

The rows to hold back follow `held_back.HELD_BACK_SCHEMA`; outcome anomalies (bought
engagement) live in `anomalies`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fbloop_assets.lib.common.agreement import label_agreement
from fbloop_assets.lib.common.config import LabelQualityGuard
from fbloop_assets.lib.common.outcome import GuardOutcome, Verdict, worst
from fbloop_assets.lib.feedback.anomalies import (
    COUNTS_SCHEMA,
    OUTCOME_COUNTS,
    outcome_anomalies,
    outcome_counts,
)
from fbloop_assets.lib.feedback.held_back import HELD_BACK_SCHEMA, GuardResult, empty_held_back, held_rows

__all__ = [
    "COUNTS_SCHEMA",
    "HELD_BACK_SCHEMA",
    "OUTCOME_COUNTS",
    "GuardResult",
    "empty_held_back",
    "label_quality",
    "outcome_anomalies",
    "outcome_counts",
    "peer_agreement",
]

# --- label quality ----------------------------------------------------------------------------


def _as_labels(feedback: pl.DataFrame) -> pl.DataFrame:
    return feedback.filter(pl.col("kind") == "label").with_columns(
        pl.when(pl.col("value") >= 0.5)
        .then(pl.lit("useful"))
        .otherwise(pl.lit("not_useful"))
        .alias("label_value")
    )


def peer_agreement(labels: pl.DataFrame) -> pl.DataFrame:
    """Per reviewer: items shared with another reviewer and the share of peer pairs that agree."""
    per_item = labels.unique(["recommendation_id", "reviewer_id"], keep="last", maintain_order=True)
    pairs = (
        per_item.select("recommendation_id", "reviewer_id", "label_value")
        .join(per_item.select("recommendation_id", "reviewer_id", "label_value"), on="recommendation_id")
        .filter(pl.col("reviewer_id") != pl.col("reviewer_id_right"))
    )
    return (
        pairs.group_by("reviewer_id")
        .agg(
            pl.col("recommendation_id").n_unique().alias("shared_items"),
            (pl.col("label_value") == pl.col("label_value_right")).mean().alias("agreement"),
        )
        .sort("reviewer_id")
    )


def _floods(
    day: pl.DataFrame, trailing: pl.DataFrame, days: int, config: LabelQualityGuard
) -> dict[str, str]:
    """Reviewers flooding ``day`` (labels) and why, judged against ``trailing`` labels of ``days`` days."""
    reasons: dict[str, str] = {}
    total = day.height
    counts = day.group_by("reviewer_id").len().sort("reviewer_id")
    per_day = trailing.group_by("reviewer_id", "partition_date").len()
    for reviewer, n in counts.iter_rows():
        history = per_day.filter(pl.col("reviewer_id") == reviewer)["len"].to_numpy()
        usual = (
            float(np.median(np.concatenate([history, np.zeros(max(days - history.size, 0))])))
            if days
            else 0.0
        )
        share = n / total
        if n >= config.flood_min_labels and share > config.flood_share and n > config.flood_jump * usual:
            reasons[reviewer] = (
                f"{n} labels, {share:.0%} of the day's (limit {config.flood_share:.0%}),"
                f" usually {usual:.0f} a day"
            )
    agreement = peer_agreement(pl.concat([trailing, day]))
    judged = agreement.filter(pl.col("shared_items") >= config.min_shared)
    for reviewer, shared, value in judged.iter_rows():
        others = judged.filter(pl.col("reviewer_id") != reviewer)["agreement"]
        if reviewer not in counts["reviewer_id"] or not others.len():
            continue
        peers = float(others.median())  # type: ignore[arg-type]
        if value < peers - config.agreement_gap:
            reasons.setdefault(
                reviewer,
                f"agrees with peers on {value:.0%} of {shared} shared items (others: {peers:.0%})",
            )
    return reasons


def label_quality(
    day_feedback: pl.DataFrame, trailing_feedback: pl.DataFrame, trailing_days: int, config: LabelQualityGuard
) -> GuardResult:
    """Judge the labels arriving on a day (``day_feedback``) against the trailing days' labels.

    Both frames are `normalized_feedback` rows (outcomes are ignored); ``trailing_days`` is how
    many days ``trailing_feedback`` spans (days without labels count as zero). Low agreement fails
    only when the bootstrap upper bound of alpha is below ``alpha_fail`` (`alpha_upper_bound`).
    """
    columns = ["reviewer_id", "recommendation_id", "label_value", "partition_date"]
    day = _as_labels(day_feedback)
    trailing = _as_labels(trailing_feedback).select(columns)
    floods = _floods(day.select(columns), trailing, trailing_days, config)
    flooded = day.filter(pl.col("reviewer_id").is_in(list(floods)))
    held = held_rows(
        flooded,
        "label_quality",
        pl.format("reviewer {} flooded the day: ", pl.col("reviewer_id"))
        + pl.col("reviewer_id").replace_strict(floods, default=""),
    )
    kept = pl.concat([trailing, day.select(columns).filter(~pl.col("reviewer_id").is_in(list(floods)))])
    agreement = label_agreement(
        kept.select("recommendation_id", "reviewer_id", "label_value"),
        config.bootstrap_samples,
        config.confidence,
    )
    alpha, items = agreement["krippendorff_alpha"], agreement["items_multiply_labeled"]
    upper = agreement["krippendorff_alpha_upper"]
    verdicts: list[Verdict] = ["fail"] if floods else []
    notes = [
        f"reviewer {r}: {why} — {day.filter(pl.col('reviewer_id') == r).height} labels held back"
        for r, why in floods.items()
    ]
    bound = f"{config.confidence:.0%} upper bound {upper:.2f}" if upper is not None else "no upper bound"
    if items < config.min_double_labeled or alpha is None or upper is None:
        verdicts.append("warn")
        notes.append(
            f"agreement not measurable: {items} items labeled twice (need {config.min_double_labeled})"
        )
    elif upper < config.alpha_fail:
        verdicts.append("fail")
        notes.append(f"Krippendorff's alpha {alpha:.2f} ({bound}) below {config.alpha_fail} on {items} items")
    elif alpha < config.alpha_warn:
        verdicts.append("warn")
        notes.append(f"Krippendorff's alpha {alpha:.2f} ({bound}) below {config.alpha_warn} on {items} items")
    else:
        notes.append(f"Krippendorff's alpha {alpha:.2f} ({bound}) on {items} items labeled twice")
    outcome = GuardOutcome(
        name="label_quality",
        verdict=worst(verdicts),
        value={
            "labels": day.height,
            "krippendorff_alpha": None if alpha is None else round(alpha, 4),
            "krippendorff_alpha_upper": None if upper is None else round(upper, 4),
            "items_labeled_twice": items,
            "labels_by_reviewer": dict(day.group_by("reviewer_id").len().sort("reviewer_id").iter_rows()),
            "floods": floods,
        },
        threshold={
            "alpha_fail": config.alpha_fail,
            "alpha_warn": config.alpha_warn,
            "confidence": config.confidence,
            "min_double_labeled": config.min_double_labeled,
            "flood_share": config.flood_share,
            "flood_min_labels": config.flood_min_labels,
            "flood_jump": config.flood_jump,
            "agreement_gap": config.agreement_gap,
        },
        detail="; ".join(notes),
        held_back={"rows": held.height, "reviewers": sorted(floods)} if floods else {},
    )
    return GuardResult(outcome, held)
