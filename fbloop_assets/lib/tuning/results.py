"""What each campaign's posts achieved per complete serving day, and the KPIs they are judged on.

`daily_results` turns one complete serving day of a FeedbackDataset into one row per (campaign,
creator): the posts, their outcomes summed inside the attribution windows, their cost and the
creator's attributes that day. The tuning engine adds up a window of these small frames. Each
campaign objective has a KPI (a ratio of sums over posts) and a cost per result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

OUTCOMES = ("impressions", "engagements", "clicks", "conversions")
CREATOR_ATTRIBUTES = (
    "follower_count",
    "engagement_rate",
    "niche",
    "audience_age_bucket",
    "audience_country",
    "cost_per_post",
    "posts_per_week",
)
RESULTS_SCHEMA: dict[str, pl.DataType] = {
    "serving_day": pl.Date(),
    "campaign_id": pl.String(),
    "creator_id": pl.String(),
    "posts": pl.Int64(),
    **{c: pl.Float64() for c in OUTCOMES},
    "cost": pl.Float64(),
    "follower_count": pl.Int64(),
    "engagement_rate": pl.Float64(),
    "niche": pl.String(),
    "audience_age_bucket": pl.String(),
    "audience_country": pl.String(),
    "cost_per_post": pl.Float64(),
    "posts_per_week": pl.Float64(),
}


@dataclass(frozen=True)
class Kpi:
    """A ratio of sums over posts; ``higher_is_better`` says which direction is an improvement."""

    name: str
    label: str
    numerator: str
    denominator: str
    higher_is_better: bool
    scale: float = 1.0
    unit: str = "%"  # "%" or "EUR"

    def format(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value * 100:.2f}%" if self.unit == "%" else f"EUR {value:,.2f}"


KPIS: dict[str, tuple[Kpi, Kpi]] = {
    "conversions": (
        Kpi("conversion_rate", "conversion rate (sales per click)", "conversions", "clicks", True),
        Kpi("cost_per_acquisition", "cost per sale", "cost", "conversions", False, unit="EUR"),
    ),
    "engagement": (
        Kpi(
            "engagement_rate",
            "engagement rate (engagements per impression)",
            "engagements",
            "impressions",
            True,
        ),
        Kpi("cost_per_engagement", "cost per engagement", "cost", "engagements", False, unit="EUR"),
    ),
    "awareness": (
        Kpi(
            "click_through_rate", "click-through rate (clicks per impression)", "clicks", "impressions", True
        ),
        Kpi("cost_per_mille", "cost per 1,000 impressions", "cost", "impressions", False, 1000.0, "EUR"),
    ),
}


def objective_of(kpi_name: str) -> str:
    """The campaign objective whose KPI is ``kpi_name``."""
    return next(objective for objective, (kpi, _) in KPIS.items() if kpi.name == kpi_name)


def daily_results(examples: pl.DataFrame, creators: pl.DataFrame, serving_day: date) -> pl.DataFrame:
    """One complete serving day, aggregated per (campaign, creator), with the creator's attributes.

    ``examples``: recommendations with ``serving_day`` and their outcomes inside the attribution
    windows (the FeedbackDataset's columns); ``creators``: the snapshot of ``serving_day``. Every
    served recommendation counts as one sponsored post at the creator's price.
    """
    served = examples.filter(pl.col("serving_day") == serving_day)
    if served.is_empty():
        return pl.DataFrame(schema=RESULTS_SCHEMA)
    frame = (
        served.group_by("campaign_id", "creator_id")
        .agg(pl.len().cast(pl.Int64).alias("posts"), *(pl.col(c).sum() for c in OUTCOMES))
        .join(creators.select("creator_id", *CREATOR_ATTRIBUTES), on="creator_id", how="inner")
        .with_columns(
            pl.lit(serving_day).alias("serving_day"),
            (pl.col("posts") * pl.col("cost_per_post")).alias("cost"),
        )
    )
    return frame.select(list(RESULTS_SCHEMA)).cast(RESULTS_SCHEMA).sort("campaign_id", "creator_id")  # type: ignore[arg-type]


def active_campaigns(campaigns: pl.DataFrame, day: date) -> pl.DataFrame:
    return campaigns.filter((pl.col("start_date") <= day) & (pl.col("end_date") >= day)).sort("campaign_id")


def realized_kpi(results: pl.DataFrame, campaign_id: str, objective: str, after: date) -> dict[str, Any]:
    """The campaign's KPI over its posts served after ``after`` (complete days only)."""
    kpi = KPIS[objective][0]
    rows = results.filter((pl.col("campaign_id") == campaign_id) & (pl.col("serving_day") > after))
    den = float(rows[kpi.denominator].sum()) if rows.height else 0.0
    return {
        "kpi": kpi.name,
        "value": float(rows[kpi.numerator].sum()) * kpi.scale / den if den > 0 else None,
        "records": int(rows["posts"].sum()) if rows.height else 0,
        "days": rows["serving_day"].n_unique() if rows.height else 0,
    }
