"""The static part of the synthetic world: creators, campaigns and the hidden truth about them.

`make_world` draws creators (niche, platform, follower tier with a long tail, engagement near the
tier's benchmark, audience age bucket and country, cost per post, cadence; some with bought
followers) and campaigns (objective, target filters, cadence, budget, dates), then the true
relevance of every eligible (campaign, creator) pair. The truth is what the evaluation may
compare against; the pipeline never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from fbloop_assets.lib.ingest.landing import AGE_BUCKETS, LIST_SEPARATOR, OBJECTIVES
from fbloop_assets.lib.scoring.features import TIER_BENCHMARK_ER, eligible_pairs
from fbloop_assets.simulate.params import (
    AGE_BUCKET_SHARES,
    BRAND_WORDS,
    COUNTRIES,
    COUNTRY_SHARES,
    NICHE_SHARES,
    NICHES,
    PLATFORM_ENGAGEMENT,
    PLATFORM_SHARES,
    PLATFORMS,
    TIER_BOUNDS,
    TIER_SHARES,
    SimParams,
)


@dataclass(frozen=True)
class World:
    """Creators and campaigns as delivered upstream, plus their truth (never delivered)."""

    creators: pl.DataFrame  # the landing contract's creator columns
    campaigns: pl.DataFrame  # the landing contract's campaign columns
    creator_truth: pl.DataFrame  # creator_id, bought_followers, fake_follower_share, real_followers, ...
    pairs: pl.DataFrame  # eligible (campaign, creator) with φ and the true relevance


def _choice(rng: np.random.Generator, options: tuple, shares: tuple, n: int) -> np.ndarray:
    p = np.asarray(shares, dtype=np.float64)
    return np.asarray(options)[rng.choice(len(options), size=n, p=p / p.sum())]


def _make_creators(params: SimParams, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = params.n_creators
    tier = rng.choice(len(TIER_SHARES), size=n, p=np.asarray(TIER_SHARES))
    low = np.log10([TIER_BOUNDS[t][0] for t in tier])
    high = np.log10([TIER_BOUNDS[t][1] for t in tier])
    real_followers = np.round(10 ** rng.uniform(low, high)).astype(np.int64)
    platform_idx = rng.choice(len(PLATFORMS), size=n, p=np.asarray(PLATFORM_SHARES))
    true_er = (
        np.asarray(TIER_BENCHMARK_ER)[tier]
        * np.asarray(PLATFORM_ENGAGEMENT)[platform_idx]
        * rng.lognormal(0.0, params.engagement_noise_sigma, size=n)
    ).clip(0.001, 0.5)

    bought = rng.random(n) < params.bought_share
    fake_share = np.where(bought, rng.uniform(*params.bought_fake_follower_range, size=n), 0.0)
    reported_followers = np.round(real_followers / (1.0 - fake_share)).astype(np.int64)
    inflation = np.where(bought, rng.uniform(*params.bought_engagement_inflation, size=n), 1.0)
    # Reported engagement: real engagement spread over all followers, plus bought engagement.
    reported_er = (true_er * (1.0 - fake_share) * inflation).clip(0.0005, 0.9)

    # Prices follow the reported audience (that is what brands pay for): EUR 5-25 per 1000 followers.
    cost = np.round(50.0 + reported_followers / 1000.0 * rng.uniform(5.0, 25.0, size=n), 2)
    ids = [f"cre-{i:05d}" for i in range(1, n + 1)]
    creators = pl.DataFrame(
        {
            "creator_id": ids,
            "niche": _choice(rng, NICHES, NICHE_SHARES, n),
            "platform": np.asarray(PLATFORMS)[platform_idx],
            "follower_count": reported_followers,
            "engagement_rate": np.round(reported_er, 5),
            "audience_age_bucket": _choice(
                rng, tuple(AGE_BUCKET_SHARES), tuple(AGE_BUCKET_SHARES.values()), n
            ),
            "audience_country": _choice(rng, COUNTRIES, COUNTRY_SHARES, n),
            "cost_per_post": cost,
            "posts_per_week": np.round(rng.uniform(2.0, 10.0, size=n), 1),
        }
    )
    truth = pl.DataFrame(
        {
            "creator_id": ids,
            "bought_followers": bought,
            "fake_follower_share": np.round(fake_share, 4),
            "real_followers": real_followers,
            "true_engagement_rate": np.round(true_er, 5),
        }
    )
    return creators, truth


def _pick_joined(rng: np.random.Generator, options: tuple, n_max: int) -> str:
    count = int(rng.integers(1, n_max + 1))
    return LIST_SEPARATOR.join(sorted(rng.choice(options, size=count, replace=False).tolist()))


def _make_campaigns(params: SimParams, rng: np.random.Generator, start: date) -> pl.DataFrame:
    rows = []
    for i in range(1, params.n_campaigns + 1):
        first_age = int(rng.integers(0, len(AGE_BUCKETS) - 1))
        ages = AGE_BUCKETS[first_age : first_age + int(rng.integers(1, 4))]
        begins = start - timedelta(days=int(rng.integers(0, 30)))
        min_followers = int(rng.choice([1_000, 5_000, 10_000, 50_000]))
        rows.append(
            {
                "campaign_id": f"camp-{i:03d}",
                "brand": f"{rng.choice(BRAND_WORDS[0])} {rng.choice(BRAND_WORDS[1])}",
                "objective": str(rng.choice(OBJECTIVES, p=[0.3, 0.3, 0.4])),
                "target_niches": _pick_joined(rng, NICHES, 3),
                "min_followers": min_followers,
                "max_followers": int(rng.choice([500_000, 2_000_000, 20_000_000])),
                "target_age_buckets": LIST_SEPARATOR.join(ages),
                "target_countries": _pick_joined(rng, COUNTRIES, 4),
                "min_engagement_rate": float(rng.choice([0.0, 0.005, 0.01])),
                "cadence_posts_per_week": float(rng.integers(1, 5)),
                "budget": float(np.round(rng.uniform(5_000, 200_000), -2)),
                "start_date": begins,
                "end_date": begins + timedelta(days=int(rng.integers(60, 180))),
            }
        )
    return pl.DataFrame(rows)


def _true_relevance(
    pairs: pl.DataFrame, campaigns: pl.DataFrame, truth: pl.DataFrame, rng: np.random.Generator
) -> pl.Series:
    """How well a creator truly serves a campaign, in (0, 1): what the loop should learn."""
    joined = pairs.join(campaigns.select("campaign_id", "objective"), on="campaign_id").join(
        truth, on="creator_id"
    )
    objective = joined["objective"].to_numpy()
    tier = joined["follower_tier"].to_numpy()
    # Engagement quality as it really is, not as reported.
    true_quality = (
        np.log2(
            joined["true_engagement_rate"].to_numpy() / np.median(joined["true_engagement_rate"].to_numpy())
        ).clip(-2, 2)
        / 2
    )
    logit = (
        -2.2
        + 2.0 * joined["niche_match"].to_numpy()
        + 0.8 * joined["audience_age_match"].to_numpy()
        + 1.2 * joined["audience_country_match"].to_numpy()
        + np.where(objective == "awareness", 1.0 * tier, 0.0)
        + np.where(objective == "conversions", 0.8 * true_quality, 0.4 * true_quality)
        - 2.0 * joined["bought_followers"].to_numpy()
        + rng.normal(0.0, 0.7, size=joined.height)  # what no feature captures
    )
    return pl.Series("relevance", np.round(1.0 / (1.0 + np.exp(-logit)), 5))


def make_world(params: SimParams, seed: int, start: date) -> World:
    """The creators, campaigns and truth of seed ``seed``; the same seed gives the same world."""
    rng = np.random.default_rng([seed, 0])
    creators, creator_truth = _make_creators(params, rng)
    campaigns = _make_campaigns(params, rng, start)
    pairs = eligible_pairs(campaigns, creators).sort("campaign_id", "creator_id")
    pairs = pairs.with_columns(_true_relevance(pairs, campaigns, creator_truth, rng))
    return World(creators=creators, campaigns=campaigns, creator_truth=creator_truth, pairs=pairs)
