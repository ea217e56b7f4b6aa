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

**Outcome anomalies (bought engagement).** Per creator, each arrival day's engagement rate
(engagements per impression) is compared with the creator's own trailing days: a robust z-score,
``(rate - median) / scale`` with ``scale = max(1.4826 MAD, relative_spread x median, the Poisson
spread sqrt(median / impressions))``. The floors matter: a creator's rate varies with the
campaigns it happens to serve (up to about 3.4x its median on ordinary simulated days, 19,203
creator-days), and a handful of steady days would otherwise turn that into huge scores. A
creator whose engagements (at least ``min_engagements``) lie above ``z_fail`` while its conversions
stay at or below ``conversion_ratio`` times what its trailing conversions per engagement predict has
bought engagement: its engagement and click rows of the day are held back and the check fails; above
``z_warn`` it is reported. Campaigns are then judged the same way on what is left, which catches
bought engagement spread thinly over many creators. An entity needs three trailing days with
impressions to be judged at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.agreement import label_agreement
from fbloop_assets.lib.common.config import AnomalyGuard, LabelQualityGuard
from fbloop_assets.lib.common.outcome import GuardOutcome, Verdict, worst

HELD_BACK_SCHEMA: dict[str, pl.DataType] = {
    "feedback_id": pl.String(),
    "guard": pl.String(),  # label_quality | outcome_anomalies
    "reason": pl.String(),
    "event_type": pl.String(),
    "reviewer_id": pl.String(),
    "creator_id": pl.String(),
    "campaign_id": pl.String(),
    "recommendation_id": pl.String(),
    "partition_date": pl.Date(),
}
MIN_TRAILING_DAYS = 3


def empty_held_back() -> pl.DataFrame:
    return pl.DataFrame(schema=HELD_BACK_SCHEMA)


def _held(rows: pl.DataFrame, guard: str, reason: pl.Expr) -> pl.DataFrame:
    return rows.with_columns(pl.lit(guard).alias("guard"), reason.alias("reason")).select(
        [pl.col(c).cast(t) for c, t in HELD_BACK_SCHEMA.items()]
    )


@dataclass(frozen=True)
class GuardResult:
    """A guard's outcome and the rows it names to hold back (`HELD_BACK_SCHEMA`)."""

    outcome: GuardOutcome
    held_back: pl.DataFrame


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
    many days ``trailing_feedback`` spans (days without labels count as zero).
    """
    columns = ["reviewer_id", "recommendation_id", "label_value", "partition_date"]
    day = _as_labels(day_feedback)
    trailing = _as_labels(trailing_feedback).select(columns)
    floods = _floods(day.select(columns), trailing, trailing_days, config)
    flooded = day.filter(pl.col("reviewer_id").is_in(list(floods)))
    held = _held(
        flooded,
        "label_quality",
        pl.format("reviewer {} flooded the day: ", pl.col("reviewer_id"))
        + pl.col("reviewer_id").replace_strict(floods, default=""),
    )
    kept = pl.concat([trailing, day.select(columns).filter(~pl.col("reviewer_id").is_in(list(floods)))])
    agreement = label_agreement(kept.select("recommendation_id", "reviewer_id", "label_value"))
    alpha, items = agreement["krippendorff_alpha"], agreement["items_multiply_labeled"]
    verdicts: list[Verdict] = ["fail"] if floods else []
    notes = [
        f"reviewer {r}: {why} — {day.filter(pl.col('reviewer_id') == r).height} labels held back"
        for r, why in floods.items()
    ]
    if items < config.min_double_labeled or alpha is None:
        verdicts.append("warn")
        notes.append(
            f"agreement not measurable: {items} items labeled twice (need {config.min_double_labeled})"
        )
    elif alpha < config.alpha_fail:
        verdicts.append("fail")
        notes.append(f"Krippendorff's alpha {alpha:.2f} below {config.alpha_fail} on {items} items")
    elif alpha < config.alpha_warn:
        verdicts.append("warn")
        notes.append(f"Krippendorff's alpha {alpha:.2f} below {config.alpha_warn} on {items} items")
    else:
        notes.append(f"Krippendorff's alpha {alpha:.2f} on {items} items labeled twice")
    outcome = GuardOutcome(
        name="label_quality",
        verdict=worst(verdicts),
        value={
            "labels": day.height,
            "krippendorff_alpha": None if alpha is None else round(alpha, 4),
            "items_labeled_twice": items,
            "labels_by_reviewer": dict(day.group_by("reviewer_id").len().sort("reviewer_id").iter_rows()),
            "floods": floods,
        },
        threshold={
            "alpha_fail": config.alpha_fail,
            "alpha_warn": config.alpha_warn,
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


# --- outcome anomalies ------------------------------------------------------------------------

OUTCOME_COUNTS = {
    "impression": "impressions",
    "engagement": "engagements",
    "click": "clicks",
    "conversion": "conversions",
}
COUNTS_SCHEMA: dict[str, pl.DataType] = {
    "creator_id": pl.String(),
    "campaign_id": pl.String(),
    "partition_date": pl.Date(),
    **{c: pl.Float64() for c in OUTCOME_COUNTS.values()},
}


def outcome_counts(feedback: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Impressions, engagements, clicks and conversions per creator, campaign and arrival day."""
    return (
        feedback.lazy()
        .filter(pl.col("kind") == "outcome")
        .group_by("creator_id", "campaign_id", "partition_date")
        .agg(
            *(
                pl.col("value").filter(pl.col("event_type") == e).sum().alias(c)
                for e, c in OUTCOME_COUNTS.items()
            )
        )
        .sort("creator_id", "campaign_id", "partition_date")
        .collect()
        .cast(COUNTS_SCHEMA)  # type: ignore[arg-type]
    )


def _daily(counts: pl.DataFrame, key: str) -> pl.DataFrame:
    return counts.group_by(key, "partition_date").agg(pl.col(c).sum() for c in OUTCOME_COUNTS.values())


def _spikes(day: pl.DataFrame, trailing: pl.DataFrame, key: str, config: AnomalyGuard) -> pl.DataFrame:
    """Per ``key`` judged on the day (`outcome_counts` of both): engagements, z, conversions."""
    today = _daily(day, key)
    history = _daily(trailing, key).filter(pl.col("impressions") > 0)
    rate = pl.col("engagements") / pl.col("impressions")
    baseline = history.group_by(key).agg(
        pl.len().alias("trailing_days"),
        rate.median().alias("median_rate"),
        (rate - rate.median()).abs().median().alias("mad"),
        (pl.col("conversions").sum() / pl.col("engagements").sum()).alias("conversions_per_engagement"),
    )
    scale = pl.max_horizontal(
        1.4826 * pl.col("mad"),
        config.relative_spread * pl.col("median_rate"),
        (pl.col("median_rate") / pl.col("impressions")).sqrt(),
        pl.lit(1e-9),
    )
    return (
        today.join(baseline, on=key, how="inner")
        .filter(
            (pl.col("trailing_days") >= MIN_TRAILING_DAYS)
            & (pl.col("impressions") > 0)
            & (pl.col("engagements") >= config.min_engagements)
        )
        .with_columns(((rate - pl.col("median_rate")) / scale).alias("z"))
        .with_columns(
            (pl.col("engagements") * pl.col("conversions_per_engagement").fill_nan(0.0)).alias(
                "expected_conversions"
            )
        )
        .filter(
            (pl.col("z") > config.z_warn)
            & (pl.col("conversions") <= config.conversion_ratio * pl.col("expected_conversions"))
        )
        .sort("z", descending=True)
    )


def outcome_anomalies(
    day_counts: pl.DataFrame,
    trailing_counts: pl.DataFrame,
    day_feedback: pl.LazyFrame | pl.DataFrame,
    config: AnomalyGuard,
) -> GuardResult:
    """Bought engagement among the outcomes arriving on a day, against each entity's trailing days.

    ``day_counts`` and ``trailing_counts``: `outcome_counts` of the day and of the trailing days;
    ``day_feedback``: the day's `normalized_feedback` rows, read only for the rows to hold back.
    """
    findings: list[dict[str, Any]] = []
    bought: dict[str, list[str]] = {}
    remaining = day_counts
    for key in ("creator_id", "campaign_id"):
        spikes = _spikes(remaining, trailing_counts, key, config)
        for row in spikes.iter_rows(named=True):
            findings.append(
                {
                    "entity": key.removesuffix("_id"),
                    "id": row[key],
                    "engagements": int(row["engagements"]),
                    "engagement_rate": round(row["engagements"] / row["impressions"], 5),
                    "usual_rate": round(row["median_rate"], 5),
                    "z": round(row["z"], 1),
                    "conversions": int(row["conversions"]),
                    "expected_conversions": round(row["expected_conversions"], 1),
                    "verdict": "fail" if row["z"] > config.z_fail else "warn",
                }
            )
        bought[key] = [row[key] for row in spikes.iter_rows(named=True) if row["z"] > config.z_fail]
        # campaigns are judged on what the held-back creators leave
        remaining = remaining.filter(~pl.col(key).is_in(bought[key]))
    creators, campaigns = bought["creator_id"], bought["campaign_id"]
    held_parts = []
    if creators or campaigns:
        by_creator = pl.col("creator_id").is_in(creators)
        rows = (
            day_feedback.lazy()
            .filter(
                (pl.col("kind") == "outcome")
                & pl.col("event_type").is_in(["engagement", "click"])
                & (by_creator | pl.col("campaign_id").is_in(campaigns))
            )
            .collect()
        )
        reason = (
            pl.when(by_creator)
            .then(pl.format("bought engagement: creator {}", pl.col("creator_id")))
            .otherwise(pl.format("bought engagement: campaign {}", pl.col("campaign_id")))
        )
        held_parts.append(_held(rows, "outcome_anomalies", reason))
    held = pl.concat([empty_held_back(), *held_parts])
    failing = [f for f in findings if f["verdict"] == "fail"]
    verdict: Verdict = "fail" if failing else "warn" if findings else "pass"
    if findings:
        detail = "; ".join(
            f"{f['entity']} {f['id']}: {f['engagements']:,} engagements at {f['engagement_rate']:.2%}"
            f" (usual {f['usual_rate']:.2%}, z {f['z']}), {f['conversions']} conversions"
            f" (expected {f['expected_conversions']})" + (" — held back" if f["verdict"] == "fail" else "")
            for f in findings[:5]
        ) + (f"; and {len(findings) - 5} more" if len(findings) > 5 else "")
    else:
        detail = "no creator or campaign engagement outside its trailing window"
    outcome = GuardOutcome(
        name="outcome_anomalies",
        verdict=verdict,
        value={"findings": findings},
        threshold={
            "z_fail": config.z_fail,
            "z_warn": config.z_warn,
            "min_engagements": config.min_engagements,
            "conversion_ratio": config.conversion_ratio,
            "trailing_days": config.trailing_days,
        },
        detail=detail,
        held_back={"rows": held.height, "entities": [f"{f['entity']} {f['id']}" for f in failing]}
        if failing
        else {},
    )
    return GuardResult(outcome, held)
