"""One day of synthetic traffic: served slates and everything that later happens to them.

`day_requests` spreads the day's suggestion requests over the active campaigns; fbloop's own
suggestion code serves them (`serve_with_world`, or the closed loop's server); `respond` draws
each suggestion's funnel (impressions, engagements, clicks, conversions) from the true relevance
of its (campaign, creator) pair, the platform's delayed reports, the audience members behind
conversions (with age, country and consent), and the reviewers' noisy labels. Every event
carries its own timestamp; the caller files it under the UTC day it arrives. All frames follow
the landing contract (`landing.COLUMNS`), so they can be written as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import numpy as np
import polars as pl

from fbloop_assets.lib.ingest.landing import AGE_BUCKETS, typed_schema
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.scoring.features import tier_index
from fbloop_assets.lib.serving.suggest import serve
from fbloop_assets.lib.weights.registry import WeightsVersion
from fbloop_assets.simulate.params import COMMENTS, COUNTRIES, SimParams
from fbloop_assets.simulate.world import World

_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_AGE_RANGES = {"<18": (13, 18), "18-25": (18, 25), "25-35": (25, 35), "35-50": (35, 50), "50+": (50, 76)}
_PLATFORM_EVENTS = (("impression", "i"), ("engagement", "e"), ("click", "c"))
# Reviewers call a suggestion useful when the relevance they perceive lies above this.
USEFUL_THRESHOLD = 0.35


@dataclass(frozen=True)
class DayTraffic:
    """What one day of serving caused; signals and labels still carry future timestamps."""

    recommendations: pl.DataFrame
    signals: pl.DataFrame
    labels: pl.DataFrame


def day_requests(
    world: World, day: date, n_recommendations: int, params: SimParams, rng: np.random.Generator
) -> pl.DataFrame:
    """The day's suggestion requests: spread over active campaigns by budget, at random times."""
    active = world.campaigns.filter((pl.col("start_date") <= day) & (pl.col("end_date") >= day))
    active = active.join(world.pairs.select("campaign_id").unique(), on="campaign_id", how="semi")
    if active.height == 0:
        raise ValueError(f"no campaign is active on {day}")
    n_requests = max(1, -(-n_recommendations // params.slate_size))
    budget = active["budget"].to_numpy()
    per_campaign = rng.multinomial(n_requests, budget / budget.sum())
    campaign_ids = np.repeat(np.asarray(active["campaign_id"].to_list()), per_campaign)
    start_us = int(datetime.combine(day, time(0), tzinfo=UTC).timestamp() * 1_000_000)
    served_us = start_us + np.sort(rng.integers(0, _DAY_US, size=campaign_ids.size))
    order = rng.permutation(campaign_ids.size)  # campaigns interleave over the day
    return pl.DataFrame(
        {
            "request_id": [f"req-{day:%Y%m%d}-{i:06d}" for i in range(1, campaign_ids.size + 1)],
            "campaign_id": campaign_ids[order],
            "served_at": served_us,
        }
    ).with_columns(pl.from_epoch("served_at", time_unit="us").dt.replace_time_zone("UTC"))


def serve_with_world(
    world: World, requests: pl.DataFrame, weights: WeightsVersion, params: SimParams, rng: np.random.Generator
) -> pl.DataFrame:
    """Serve ``requests`` through fbloop's suggestion code, scored against the world's catalog."""
    context = ScoringContext.build(world.campaigns, world.creators, None)
    return serve(context, weights, requests, params.slate_size, params.serving_temperature, rng)


def _platform_reports(
    recs: pl.DataFrame,
    totals: dict[str, np.ndarray],
    post_us: np.ndarray,
    params: SimParams,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Impressions, engagements and clicks, reported as increments at fixed hours after the post."""
    n = recs.height
    shares = np.asarray(params.report_shares) / np.sum(params.report_shares)
    offsets = (np.asarray(params.report_hours) * _HOUR_US).astype(np.int64)
    frames = []
    for event, letter in _PLATFORM_EVENTS:
        increments = rng.multinomial(totals[event], shares)  # (n, reports)
        frames.append(
            pl.DataFrame(
                {
                    "rec_idx": np.repeat(np.arange(n), len(offsets)),
                    "suffix": np.tile([f"-{letter}{b + 1}" for b in range(len(offsets))], n),
                    "event_type": event,
                    "metric_value": increments.ravel().astype(np.float64),
                    "ts_us": (post_us[:, None] + offsets[None, :]).ravel(),
                }
            )
        )
    reports = pl.concat(frames)
    return reports.with_columns(
        pl.lit("platform_api").alias("source"),
        pl.lit(None, pl.String).alias("subject_id"),
        pl.lit(None, pl.Int64).alias("subject_age"),
        pl.lit(None, pl.String).alias("subject_country"),
        pl.lit(None, pl.Boolean).alias("consent_analytics"),
        pl.lit(None, pl.String).alias("landing_url"),
    )


def _conversions(
    recs: pl.DataFrame,
    counts: np.ndarray,
    post_us: np.ndarray,
    world: World,
    params: SimParams,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """One row per conversion: the audience member, their age, country and consent."""
    rec_idx = np.repeat(np.arange(recs.height), counts)
    m = rec_idx.size
    nth = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    served_us = recs["served_us"].to_numpy()[rec_idx]
    post = post_us[rec_idx]
    # Exponential delay truncated at the attribution window (measured from serving).
    limit_days = (served_us + params.conversion_window_days * _DAY_US - 1 - post) / _DAY_US
    mean = params.conversion_delay_mean_days
    u = rng.random(m)
    delay_days = -mean * np.log1p(-u * (1.0 - np.exp(-limit_days / mean)))
    creators = recs.select("creator_id").join(
        world.creators.select("creator_id", "audience_age_bucket", "audience_country"),
        on="creator_id",
        how="left",
    )
    bucket_index = {b: i for i, b in enumerate(AGE_BUCKETS)}
    own_bucket = (
        creators["audience_age_bucket"].replace_strict(bucket_index, return_dtype=pl.Int64).to_numpy()
    )
    bucket = np.where(rng.random(m) < 0.7, own_bucket[rec_idx], rng.integers(0, len(AGE_BUCKETS), size=m))
    low = np.array([_AGE_RANGES[b][0] for b in AGE_BUCKETS])
    high = np.array([_AGE_RANGES[b][1] for b in AGE_BUCKETS])
    age = rng.integers(low[bucket], high[bucket])
    own_country = creators["audience_country"].to_numpy()[rec_idx]
    country = np.where(
        rng.random(m) < 0.7, own_country, np.asarray(COUNTRIES)[rng.integers(0, len(COUNTRIES), m)]
    )
    consent_draw = rng.choice(3, size=m, p=np.asarray(params.consent_shares))
    url = rng.random(m) < params.landing_url_share
    return (
        pl.DataFrame(
            {
                "rec_idx": rec_idx,
                "suffix": nth.astype(np.int64),
                "event_type": "conversion",
                "metric_value": np.ones(m),
                "ts_us": (post + delay_days * _DAY_US).astype(np.int64),
                "source": "shop_pixel",
                "subject_no": rng.integers(1, params.subject_pool + 1, size=m),
                "subject_age": age.astype(np.int64),
                "subject_country": country,
                "consent_analytics": consent_draw == 0,
                "consent_missing": consent_draw == 2,
                "has_url": url,
            },
            schema_overrides={"event_type": pl.String, "source": pl.String},
        )
        .with_columns(
            pl.format("-v{}", pl.col("suffix")).alias("suffix"),
            pl.format("sub-{}", pl.col("subject_no").cast(pl.String).str.zfill(7)).alias("subject_id"),
            pl.when(pl.col("consent_missing"))
            .then(None)
            .otherwise(pl.col("consent_analytics"))
            .alias("consent_analytics"),
            pl.when(pl.col("has_url"))
            .then(pl.format("https://shop.example/p/{}?utm_source=influencer", pl.col("subject_no") % 997))
            .otherwise(None)
            .alias("landing_url"),
        )
        .drop("subject_no", "consent_missing", "has_url")
    )


def _planted(
    recs: pl.DataFrame, truth: pl.DataFrame, world: World, params: SimParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per post: engagement factor, conversion factor and flat-response flag of the planted effects.

    All ones and False when nothing is planted, so the default world's draws stay the same.
    """
    n = recs.height
    campaign = recs["campaign_id"].to_numpy()
    engagement = np.ones(n)
    conversion = np.ones(n)
    tier = truth.select(tier_index(pl.col("follower_count")))[:, 0].to_numpy()
    for campaign_id, planted_tier, factor in params.planted_tier_conversion:
        conversion = np.where(
            (campaign == campaign_id) & (tier == planted_tier), conversion * factor, conversion
        )
    for campaign_id, factor in params.planted_cadence_fatigue:
        cadence = world.campaigns.filter(pl.col("campaign_id") == campaign_id)["cadence_posts_per_week"]
        weekly_posts = truth["posts_per_week"].to_numpy() + float(cadence[0])
        engagement = np.where(campaign == campaign_id, engagement * factor**weekly_posts, engagement)
    flat = np.isin(campaign, list(params.planted_flat_response))
    return engagement, conversion, flat


# The flat-response control's rates per impression (and per click), whatever the creator.
FLAT_ENGAGEMENT_RATE = 0.03
FLAT_RELEVANCE = 0.5


def _signals(
    recs: pl.DataFrame,
    world: World,
    params: SimParams,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Every outcome signal the day's suggestions will cause, whenever it arrives."""
    n = recs.height
    truth = recs.select("creator_id").join(
        world.creator_truth.join(
            world.creators.select("creator_id", "follower_count", "engagement_rate", "posts_per_week"),
            on="creator_id",
        ),
        on="creator_id",
        how="left",
    )
    engagement_factor, conversion_factor, flat = _planted(recs, truth, world, params)
    relevance = np.where(flat, FLAT_RELEVANCE, recs["relevance"].to_numpy())
    real_followers = truth["real_followers"].to_numpy()
    impressions = rng.poisson(real_followers * rng.uniform(*params.reach_range, size=n))
    reported = truth["follower_count"].to_numpy() * truth["engagement_rate"].to_numpy()
    engagements = rng.poisson(
        np.where(flat, impressions * FLAT_ENGAGEMENT_RATE, reported) * engagement_factor
    )
    clicks = rng.binomial(impressions, params.ctr_base * (0.3 + 1.4 * relevance))
    cvr = params.cvr_base * (0.2 + 1.6 * relevance)
    bought = truth["bought_followers"].to_numpy() & ~flat
    cvr = np.where(bought, cvr * params.bought_conversion_factor, cvr) * conversion_factor
    conversions = rng.binomial(clicks, cvr)
    low, high = params.post_delay_hours
    post_us = recs["served_us"].to_numpy() + (rng.uniform(low, high, size=n) * _HOUR_US).astype(np.int64)
    totals = {"impression": impressions, "engagement": engagements, "click": clicks}
    rows = pl.concat(
        [
            _platform_reports(recs, totals, post_us, params, rng),
            _conversions(recs, conversions, post_us, world, params, rng),
        ],
        how="diagonal_relaxed",
    )
    rec_ids = recs["recommendation_id"]
    return rows.select(
        pl.concat_str(
            pl.lit("sig-"), rec_ids.gather(rows["rec_idx"]).str.slice(4).alias("r"), pl.col("suffix")
        ).alias("signal_id"),
        "source",
        "event_type",
        "metric_value",
        pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC").alias("timestamp"),
        rec_ids.gather(rows["rec_idx"]).alias("recommendation_id"),
        "subject_id",
        "subject_age",
        "subject_country",
        "consent_analytics",
        "landing_url",
    ).cast(typed_schema("outcome_signals"))  # type: ignore[arg-type]


def _labels(recs: pl.DataFrame, world: World, params: SimParams, rng: np.random.Generator) -> pl.DataFrame:
    """Reviewers' useful / not useful judgements: the truth seen through each reviewer's noise."""
    n = recs.height
    cap = params.n_reviewers * params.max_labels_per_reviewer_per_day
    share = min(params.label_share, cap / max(n, 1))
    picked = np.flatnonzero(rng.random(n) < share)
    twice = picked[rng.random(picked.size) < params.double_label_share]
    rec_idx = np.concatenate([picked, twice])
    nth = np.concatenate([np.ones(picked.size, np.int64), np.full(twice.size, 2, np.int64)])
    first = rng.integers(0, params.n_reviewers, size=picked.size)
    second = (
        first[np.searchsorted(picked, twice)] + rng.integers(1, params.n_reviewers, size=twice.size)
    ) % (params.n_reviewers)
    reviewer = np.concatenate([first, second])
    # Reviewer r's noise grows with r; the last reviewer also favours big accounts.
    noise = np.linspace(*params.reviewer_noise_range, params.n_reviewers)[reviewer]
    tier = (
        recs.select("creator_id")
        .join(
            world.pairs.select("creator_id", "follower_tier").unique("creator_id"),
            on="creator_id",
            how="left",
        )["follower_tier"]
        .to_numpy()[rec_idx]
    )
    popularity_bias = np.where(reviewer == params.n_reviewers - 1, 0.25 * tier, 0.0)
    perceived = recs["relevance"].to_numpy()[rec_idx] + popularity_bias + rng.normal(0.0, noise)
    threshold = USEFUL_THRESHOLD
    confidence = np.clip(0.5 + np.abs(perceived - threshold) + rng.normal(0, 0.05, rec_idx.size), 0.05, 1.0)
    low, high = params.label_delay_hours
    labeled_us = recs["served_us"].to_numpy()[rec_idx] + (
        rng.uniform(low, high, rec_idx.size) * _HOUR_US
    ).astype(np.int64)
    has_comment = rng.random(rec_idx.size) < params.comment_share
    comment = pl.Series(np.asarray(COMMENTS)[rng.integers(0, len(COMMENTS), rec_idx.size)]).scatter(
        np.flatnonzero(~has_comment), None
    )
    rec_ids = recs["recommendation_id"]
    frame = pl.DataFrame(
        {
            "rec_idx": rec_idx,
            "nth": nth,
            "reviewer_id": [f"rev-{r + 1:02d}" for r in reviewer.tolist()],
            "label_value": np.where(perceived > threshold, "useful", "not_useful"),
            "confidence": np.round(confidence, 2),
            "ts_us": labeled_us,
            "comment": comment,
        },
    )
    return (
        frame.select(
            pl.concat_str(
                pl.lit("lab-"), rec_ids.gather(frame["rec_idx"]).str.slice(4), pl.format("-{}", "nth")
            ).alias("label_id"),
            "reviewer_id",
            rec_ids.gather(frame["rec_idx"]).alias("recommendation_id"),
            "label_value",
            "confidence",
            pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC").alias("labeled_at"),
            "comment",
        )
        .sort("labeled_at", "label_id")
        .cast(pl.Schema(typed_schema("labels")))
    )


def respond(world: World, served: pl.DataFrame, params: SimParams, rng: np.random.Generator) -> DayTraffic:
    """Everything that follows from ``served`` recommendations (the serving log's rows)."""
    recs = served.join(
        world.pairs.select("campaign_id", "creator_id", "relevance"),
        on=["campaign_id", "creator_id"],
        how="left",
    ).with_columns(pl.col("served_at").dt.epoch("us").alias("served_us"))
    if recs["relevance"].null_count():
        raise ValueError("served a creator that is not eligible for its campaign in the simulated world")
    signals = _signals(recs, world, params, rng)
    labels = _labels(recs, world, params, rng)
    if params.click_only:  # drawn anyway, so that the rest of the world stays the same
        signals = signals.filter(pl.col("event_type").is_in(["impression", "click"]))
        labels = labels.clear()
    return DayTraffic(recommendations=served, signals=signals, labels=labels)


def play_day(
    world: World,
    day: date,
    weights: WeightsVersion,
    n_recommendations: int,
    params: SimParams,
    rng: np.random.Generator,
) -> DayTraffic:
    """Serve ``day``'s suggestions with ``weights`` and draw everything that follows from them."""
    requests = day_requests(world, day, n_recommendations, params, rng)
    return respond(world, serve_with_world(world, requests, weights, params, rng), params, rng)
