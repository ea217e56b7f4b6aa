"""The simulated world played in memory for the tuning engine: planted truths, complete outcomes.

`play` serves each day through fbloop's suggestion code, draws what follows (with the planted
effects), sums each recommendation's outcomes (the simulator draws every event inside its
attribution window, so the sums are the complete outcomes the FeedbackDataset would hold) and
turns each day into `lib.tuning.daily_results`, the engine's input. No Dagster, no landing files:
the pipeline's side of this is tested in test_tuning_loop.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from fbloop_assets.lib.tuning.suggestions import daily_results
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.traffic import play_day
from fbloop_assets.simulate.world import World, make_world

START = date(2026, 1, 1)
SEED = 11

OUTCOME_COLUMNS = {
    "impression": "impressions",
    "engagement": "engagements",
    "click": "clicks",
    "conversion": "conversions",
}


@dataclass(frozen=True)
class Played:
    world: World
    results: pl.DataFrame  # daily_results of every day played
    days: list[date]


def pick_campaigns(world: World) -> dict[str, str]:
    """Three campaigns for the planted cases: mega-tier conversions, cadence fatigue, control."""
    campaigns = world.campaigns.sort("budget", descending=True)
    conversions = campaigns.filter(
        (pl.col("objective") == "conversions") & (pl.col("max_followers") >= 2_000_000)
    )
    engagement = campaigns.filter(
        (pl.col("objective") == "engagement") & (pl.col("cadence_posts_per_week") >= 3)
    )
    mega = conversions["campaign_id"][0]
    cadence = engagement["campaign_id"][0]
    control = campaigns.filter(~pl.col("campaign_id").is_in([mega, cadence]))["campaign_id"][0]
    return {"mega": mega, "cadence": cadence, "control": control}


def planted_params(picked: dict[str, str], **overrides: object) -> SimParams:
    return SimParams(
        # the big accounts (macro and mega) of one campaign have bought audiences: 1/10 the sales per click
        planted_tier_conversion=((picked["mega"], 2, 0.1), (picked["mega"], 3, 0.1)),
        # another campaign's audiences tire: each weekly post of a creator costs 30% of engagement
        planted_cadence_fatigue=((picked["cadence"], 0.7),),
        planted_flat_response=(picked["control"],),
        **overrides,  # type: ignore[arg-type]
    )


def outcomes_per_recommendation(recommendations: pl.DataFrame, signals: pl.DataFrame) -> pl.DataFrame:
    sums = signals.group_by("recommendation_id").agg(
        pl.col("metric_value").filter(pl.col("event_type") == e).sum().alias(c)
        for e, c in OUTCOME_COLUMNS.items()
    )
    return (
        recommendations.with_columns(pl.col("served_at").dt.date().alias("serving_day"))
        .join(sums, on="recommendation_id", how="left")
        .with_columns(pl.col(c).fill_null(0.0) for c in OUTCOME_COLUMNS.values())
    )


def play(params: SimParams, days: int, recommendations_per_day: int, seed: int = SEED) -> Played:
    world = make_world(params, seed, START)
    frames = []
    played = [START + timedelta(days=i) for i in range(days)]
    for day in played:
        rng = np.random.default_rng([seed, day.toordinal()])
        traffic = play_day(world, day, INITIAL, recommendations_per_day, params, rng)
        examples = outcomes_per_recommendation(traffic.recommendations, traffic.signals)
        frames.append(daily_results(examples, world.creators, day))
    return Played(world, pl.concat(frames), played)
