"""The scorer's feature vector φ(campaign, creator) and which creators a campaign may be shown.

A suggestion ranks the creators eligible for a campaign by ``w · φ``. Eligibility is the
campaign's hard filters (follower range, minimum engagement rate); everything else the brand
asked for is a soft feature, so that the weights, not a filter, decide how much it matters.

φ, every component in [0, 1] except ``engagement_quality`` in [-1, 1]:

- ``niche_match``: 1 if the creator's niche is one of the campaign's target niches.
- ``audience_age_match``: 1 if the creator's dominant audience age bucket is targeted.
- ``audience_country_match``: 1 if the creator's dominant audience country is targeted.
- ``follower_tier``: log10(followers) / 7, so 10 M followers is 1.0.
- ``engagement_quality``: log2 of the engagement rate over its follower-tier benchmark, / 2,
  clipped; 0 is a typical creator of that size. Inflated by bought engagement (a known weakness
  that feedback must correct).
- ``cost_efficiency``: log10 of engaged followers per EUR of a post, mapped from [-3, 1] to
  [0, 1].

This module does not know how weights are learned; it only computes φ and the score.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fbloop_assets.lib.landing import LIST_SEPARATOR

FEATURES = (
    "niche_match",
    "audience_age_match",
    "audience_country_match",
    "follower_tier",
    "engagement_quality",
    "cost_efficiency",
)

# The weights every installation starts from ("w0"), hand-set as a sensible marketer would:
# niche match first, then engagement and the audience match, reach and price after that.
INITIAL_WEIGHTS_VERSION = "w0"
INITIAL_WEIGHTS: dict[str, float] = {
    "niche_match": 1.5,
    "audience_age_match": 0.6,
    "audience_country_match": 0.8,
    "follower_tier": 0.4,
    "engagement_quality": 1.0,
    "cost_efficiency": 0.3,
}

# Engagement-rate benchmarks by follower tier (lower bound of the tier, typical rate); see
# docs/simulator.md for the sources.
TIER_FLOORS = (0, 10_000, 100_000, 1_000_000)
TIER_BENCHMARK_ER = (0.04, 0.025, 0.015, 0.01)


def tier_index(followers: pl.Expr) -> pl.Expr:
    """0 nano (<10k), 1 micro (<100k), 2 macro (<1M), 3 mega."""
    return pl.sum_horizontal([(followers >= floor).cast(pl.Int8) for floor in TIER_FLOORS[1:]])


def eligible_pairs(campaigns: pl.DataFrame, creators: pl.DataFrame) -> pl.DataFrame:
    """Every (campaign, creator) that passes the campaign's hard filters, with φ."""
    pairs = campaigns.join(creators, how="cross").filter(
        pl.col("follower_count").is_between(pl.col("min_followers"), pl.col("max_followers")),
        pl.col("engagement_rate") >= pl.col("min_engagement_rate"),
    )
    return pairs.select("campaign_id", "creator_id", *feature_exprs())


def feature_exprs() -> list[pl.Expr]:
    """φ as polars expressions over a joined campaign × creator frame."""
    benchmark = tier_index(pl.col("follower_count")).replace_strict(
        dict(enumerate(TIER_BENCHMARK_ER)), return_dtype=pl.Float64
    )
    followers = pl.col("follower_count").cast(pl.Float64).clip(lower_bound=1.0)
    engaged_per_eur = followers * pl.col("engagement_rate") / pl.col("cost_per_post").clip(lower_bound=1.0)
    return [
        pl.col("target_niches")
        .str.split(LIST_SEPARATOR)
        .list.contains(pl.col("niche"))
        .cast(pl.Float64)
        .alias("niche_match"),
        pl.col("target_age_buckets")
        .str.split(LIST_SEPARATOR)
        .list.contains(pl.col("audience_age_bucket"))
        .cast(pl.Float64)
        .alias("audience_age_match"),
        pl.col("target_countries")
        .str.split(LIST_SEPARATOR)
        .list.contains(pl.col("audience_country"))
        .cast(pl.Float64)
        .alias("audience_country_match"),
        (followers.log10() / 7.0).clip(0.0, 1.0).alias("follower_tier"),
        ((pl.col("engagement_rate").clip(lower_bound=1e-4) / benchmark).log(2) / 2.0)
        .clip(-1.0, 1.0)
        .alias("engagement_quality"),
        ((engaged_per_eur.clip(lower_bound=1e-6).log10() + 3.0) / 4.0)
        .clip(0.0, 1.0)
        .alias("cost_efficiency"),
    ]


def scores(features: pl.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """``w · φ`` for every row of ``features`` (a frame with the FEATURES columns)."""
    missing = [f for f in FEATURES if f not in weights]
    if missing:
        raise ValueError(f"weights lack feature(s): {', '.join(missing)}")
    matrix = features.select(FEATURES).to_numpy()
    return matrix @ np.array([weights[f] for f in FEATURES], dtype=np.float64)
