"""Outcome anomalies: bought engagement among the outcomes arriving on a day.

Per creator, each arrival day's engagement rate (engagements per impression) is compared with the
creator's own trailing days: a robust z-score,
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

from typing import Any

import polars as pl

from fbloop_assets.lib.common.config import AnomalyGuard
from fbloop_assets.lib.common.outcome import GuardOutcome, Verdict
from fbloop_assets.lib.feedback.held_back import GuardResult, empty_held_back, held_rows

MIN_TRAILING_DAYS = 3

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


def _finding(row: dict[str, Any], key: str, config: AnomalyGuard) -> dict[str, Any]:
    """One judged entity of `_spikes`, as the check reports it."""
    return {
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


def _detail(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "no creator or campaign engagement outside its trailing window"
    return "; ".join(
        f"{f['entity']} {f['id']}: {f['engagements']:,} engagements at {f['engagement_rate']:.2%}"
        f" (usual {f['usual_rate']:.2%}, z {f['z']}), {f['conversions']} conversions"
        f" (expected {f['expected_conversions']})" + (" — held back" if f["verdict"] == "fail" else "")
        for f in findings[:5]
    ) + (f"; and {len(findings) - 5} more" if len(findings) > 5 else "")


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
        findings.extend(_finding(row, key, config) for row in spikes.iter_rows(named=True))
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
        held_parts.append(held_rows(rows, "outcome_anomalies", reason))
    held = pl.concat([empty_held_back(), *held_parts])
    failing = [f for f in findings if f["verdict"] == "fail"]
    verdict: Verdict = "fail" if failing else "warn" if findings else "pass"
    detail = _detail(findings)
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
