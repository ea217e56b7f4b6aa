"""Attacks on the feedback loop, staged by the simulator on chosen days (docs/simulator.md, "Attacks").

- ``label-flood``: one new reviewer account labels far more than any reviewer does, more than half
  of the day's labels, on suggestions served that day and the day before, every label the
  opposite of the hidden truth; some of them on suggestions other reviewers label too.
- ``bot-spike``: a set of low-relevance creators gets bought engagement and click fraud on their
  recent suggestions, delivered as ordinary platform reports, with no extra conversion.
- ``late-conversions``: a share of the conversions of the day's suggestions arrives 3-9 days after
  serving instead of mostly on the first day, so some miss the 7-day attribution window.

Every injected row goes through the same landing files as the normal traffic; the draws use their
own random streams, so the rest of the world stays exactly as it would have been. This module
builds the rows and a record of what it injected; `run.Simulation` decides when and delivers them.
It does not decide whether the loop notices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.ingest.day import day_bounds
from fbloop_assets.lib.ingest.landing import typed_schema
from fbloop_assets.simulate.params import ATTACKS, SimParams
from fbloop_assets.simulate.traffic import USEFUL_THRESHOLD
from fbloop_assets.simulate.world import World

LABEL_FLOOD, BOT_SPIKE, LATE_CONVERSIONS = ATTACKS
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
# A flood label comes at least this long after its suggestion was served.
_MIN_LABEL_LAG_US = 10 * 60 * 1_000_000
# The truth about injected rows (simulation/truth/attack_rows.parquet): which row, which attack.
ATTACK_ROW_SCHEMA = pl.Schema(
    {
        "day": pl.Date(),
        "attack": pl.String(),
        "source": pl.String(),  # outcome_signals | labels
        "row_id": pl.String(),  # signal_id | label_id
        "recommendation_id": pl.String(),
        "creator_id": pl.String(),
    }
)


def parse_attacks(text: str) -> tuple[str, ...]:
    """A comma-separated list of attack names, validated, in the order of ``ATTACKS``, no repeats."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack {unknown[0]!r}; choose from {', '.join(ATTACKS)}")
    return tuple(a for a in ATTACKS if a in names)


def attack_schedule(attacks: Iterable[str], n_days: int) -> dict[str, tuple[int, ...]]:
    """The standard attack days of a run of ``n_days`` days (0-based), as ``SimParams.attack_days``.

    label-flood: 3 days from 1/3 and from 2/3 of the run; bot-spike: 3 days from 45 % and from
    80 %; late-conversions: every day from 40 % to the end. Days past the run are dropped.
    """
    episodes = {
        LABEL_FLOOD: [(n_days // 3, 3), (2 * n_days // 3, 3)],
        BOT_SPIKE: [(round(0.45 * n_days), 3), (round(0.8 * n_days), 3)],
        LATE_CONVERSIONS: [(round(0.4 * n_days), n_days)],
    }
    schedule = {}
    for name in parse_attacks(",".join(attacks)):
        days = sorted({d for first, length in episodes[name] for d in range(first, first + length)})
        schedule[name] = tuple(d for d in days if d < n_days)
    return schedule


def attacks_on(params: SimParams, index: int) -> tuple[str, ...]:
    """The attacks staged on day ``index`` (0-based), in the order of ``ATTACKS``."""
    return tuple(a for a in ATTACKS if index in params.attack_days.get(a, ()))


def episode(days: Iterable[int], index: int) -> tuple[int, int]:
    """(first day, 1-based number) of the run of consecutive attack days that holds ``index``."""
    ordered = sorted(set(days))
    if index not in ordered:
        raise ValueError(f"day {index} is not an attack day")
    starts = [d for d in ordered if d - 1 not in ordered]
    first = max(s for s in starts if s <= index)
    return first, starts.index(first) + 1


def with_truth(world: World, served: pl.DataFrame) -> pl.DataFrame:
    """Served rows with their pair's true relevance and the serving time in microseconds."""
    return (
        served.select("recommendation_id", "campaign_id", "creator_id", "served_at")
        .join(world.pairs.select("campaign_id", "creator_id", "relevance"), on=["campaign_id", "creator_id"])
        .with_columns(pl.col("served_at").dt.epoch("us").alias("served_us"))
    )


def _utc(name: str, microseconds: np.ndarray) -> pl.Series:
    return pl.Series(name, microseconds, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _ids(frame: pl.DataFrame, source: str, attack: str, day: date, id_column: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(day).alias("day"),
        pl.lit(attack).alias("attack"),
        pl.lit(source).alias("source"),
        pl.col(id_column).alias("row_id"),
        "recommendation_id",
        "creator_id",
    ).cast(ATTACK_ROW_SCHEMA)  # type: ignore[arg-type]


def delay_conversions(
    signals: pl.DataFrame, served: pl.DataFrame, params: SimParams, rng: np.random.Generator, day: date
) -> tuple[pl.DataFrame, dict[str, Any], pl.DataFrame]:
    """Move a share of the conversions of ``served`` to 3-9 days after serving (late-conversions).

    ``signals`` are everything the day's suggestions cause; returns them with the new timestamps,
    the record (conversions, delayed, delayed past the attribution window, delay quantiles) and
    the delayed rows' ids.
    """
    attack = params.attack
    marked = signals.with_row_index("_row").join(
        served.select("recommendation_id", "creator_id", pl.col("served_at").dt.epoch("us").alias("_served")),
        on="recommendation_id",
        how="left",
    )
    conversions = marked.filter(pl.col("event_type") == "conversion").sort("_row")
    late = rng.random(conversions.height) < attack.late_conversion_share
    low, high = attack.late_conversion_delay_days
    delay_days = rng.uniform(low, high, size=conversions.height)
    chosen = conversions.filter(pl.Series(late))
    new_us = chosen["_served"].to_numpy() + (delay_days[late] * _DAY_US).astype(np.int64)
    timestamp = signals["timestamp"].dt.epoch("us").to_numpy().copy()
    timestamp[chosen["_row"].to_numpy()] = new_us
    moved = signals.with_columns(_utc("timestamp", timestamp))
    delays = delay_days[late]
    record = {
        "conversions": conversions.height,
        "delayed": int(late.sum()),
        "delayed_past_window": int((delays > params.conversion_window_days).sum()),
        "delay_days_quantiles": {
            q: round(float(np.quantile(delays, float(q))), 2) if delays.size else None
            for q in ("0.1", "0.5", "0.9")
        },
    }
    return moved, record, _ids(chosen, "outcome_signals", LATE_CONVERSIONS, day, "signal_id")


def pick_bot_creators(recent: pl.DataFrame, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` creators among the bottom third, by the mean true relevance of their recent suggestions."""
    ranked = (
        recent.group_by("creator_id")
        .agg(pl.col("relevance").mean())
        .sort("relevance", "creator_id")["creator_id"]
        .to_list()
    )
    bottom = ranked[: max(n, math.ceil(len(ranked) / 3))]
    picked = rng.choice(len(bottom), size=min(n, len(bottom)), replace=False)
    return sorted(bottom[i] for i in picked)


def bought_engagement(
    recent: pl.DataFrame,
    world: World,
    day: date,
    creators: list[str],
    params: SimParams,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, dict[str, Any], pl.DataFrame]:
    """Bought engagements and clicks on ``creators``' recent suggestions, arriving on ``day`` (bot-spike).

    Each post whose suggestion was served early enough to be up before ``day`` ends gets
    (multiple - 1) x its expected engagements (reported followers x reported engagement rate) and
    clicks (real followers x mean reach x click-through at its relevance), as platform reports at
    random times of ``day`` after the post. No conversion comes with them.
    """
    attack = params.attack
    start, end = (int(t.timestamp() * 1_000_000) for t in day_bounds(day))
    up_us = int(params.post_delay_hours[1] * _HOUR_US)
    posts = (
        recent.filter(pl.col("creator_id").is_in(creators) & (pl.col("served_us") + up_us < end))
        .join(world.creators.select("creator_id", "follower_count", "engagement_rate"), on="creator_id")
        .join(world.creator_truth.select("creator_id", "real_followers"), on="creator_id")
        .sort("recommendation_id")
    )
    expected_engagements = (posts["follower_count"] * posts["engagement_rate"]).to_numpy()
    ctr = params.ctr_base * (0.3 + 1.4 * posts["relevance"].to_numpy())
    expected_clicks = posts["real_followers"].to_numpy() * np.mean(params.reach_range) * ctr
    extra = {
        "engagement": rng.poisson((attack.bot_engagement_multiple - 1.0) * expected_engagements),
        "click": rng.poisson((attack.bot_click_multiple - 1.0) * expected_clicks),
    }
    earliest = np.maximum(posts["served_us"].to_numpy() + up_us, start)
    frames = []
    for event, letter in (("engagement", "e"), ("click", "c")):
        at = earliest + (rng.random(posts.height) * (end - earliest)).astype(np.int64)
        frames.append(
            posts.select("recommendation_id", "creator_id").with_columns(
                pl.format(
                    "sig-{}-x{}{}",
                    pl.col("recommendation_id").str.slice(4),
                    pl.lit(letter),
                    pl.lit(f"{day:%Y%m%d}"),
                ).alias("signal_id"),
                pl.lit("platform_api").alias("source"),
                pl.lit(event).alias("event_type"),
                pl.Series("metric_value", extra[event].astype(np.float64)),
                _utc("timestamp", at),
            )
        )
    rows = pl.concat(frames).filter(pl.col("metric_value") > 0)
    signals = rows.select(
        "signal_id",
        "source",
        "event_type",
        "metric_value",
        "timestamp",
        "recommendation_id",
        *(
            pl.lit(None).alias(c)
            for c in ("subject_id", "subject_age", "subject_country", "consent_analytics")
        ),
        pl.lit(None).alias("landing_url"),
    ).cast(typed_schema("outcome_signals"))  # type: ignore[arg-type]
    record = {
        "creators": creators,
        "posts": posts.height,
        "expected_engagements": round(float(expected_engagements.sum()), 1),
        "extra_engagements": int(extra["engagement"].sum()),
        "expected_clicks": round(float(expected_clicks.sum()), 1),
        "extra_clicks": int(extra["click"].sum()),
        "extra_conversions": 0,
        "signal_rows": signals.height,
    }
    return signals, record, _ids(rows, "outcome_signals", BOT_SPIKE, day, "signal_id")


def flood_labels(
    recent: pl.DataFrame,
    labeled: pl.Series,
    day: date,
    count: int,
    reviewer_id: str,
    params: SimParams,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, dict[str, Any], pl.DataFrame]:
    """``count`` labels by ``reviewer_id`` on ``day``, each the opposite of the truth (label-flood).

    ``recent`` are the suggestions served that day and the day before (with their relevance),
    ``labeled`` the ids among them that other reviewers label; a share of the flood goes to those.
    A label is "useful" where the true relevance is at most the reviewers' threshold, else
    "not_useful", with a high confidence, at a random time of ``day`` after its suggestion was served.
    """
    attack = params.attack
    start, end = (int(t.timestamp() * 1_000_000) for t in day_bounds(day))
    pool = recent.filter(pl.col("served_us") < end - _MIN_LABEL_LAG_US).sort("recommendation_id")
    shared = pool["recommendation_id"].is_in(labeled.implode()).to_numpy()
    n_shared = min(round(count * attack.label_flood_overlap_share), int(shared.sum()))
    first = rng.choice(np.flatnonzero(shared), size=n_shared, replace=False)
    rest = np.setdiff1d(np.arange(pool.height), first)
    second = rng.choice(rest, size=min(count - n_shared, rest.size), replace=False)
    targets = pool[np.sort(np.concatenate([first, second]))]
    n = targets.height
    earliest = np.maximum(targets["served_us"].to_numpy() + _MIN_LABEL_LAG_US, start)
    labeled_us = earliest + (rng.random(n) * (end - earliest)).astype(np.int64)
    relevance = targets["relevance"].to_numpy()
    confidence = np.round(rng.uniform(*attack.label_flood_confidence, size=n), 2)
    rows = targets.with_columns(
        pl.format("lab-{}-{}", pl.col("recommendation_id").str.slice(4), pl.lit(reviewer_id)).alias(
            "label_id"
        ),
        pl.lit(reviewer_id).alias("reviewer_id"),
        pl.Series("label_value", np.where(relevance > USEFUL_THRESHOLD, "not_useful", "useful")),
        pl.Series("confidence", confidence),
        _utc("labeled_at", labeled_us),
        pl.lit(None, pl.String).alias("comment"),
    )
    labels = rows.select(
        "label_id", "reviewer_id", "recommendation_id", "label_value", "confidence", "labeled_at", "comment"
    ).cast(pl.Schema(typed_schema("labels")))
    record = {
        "reviewer_id": reviewer_id,
        "labels": n,
        "on_suggestions_others_label": int(rows["recommendation_id"].is_in(labeled.implode()).sum()),
        "useful": int((rows["label_value"] == "useful").sum()),
    }
    return labels, record, _ids(rows, "labels", LABEL_FLOOD, day, "label_id")


def flood_size(normal_labels: int, share: float) -> int:
    """Flood labels that make ``share`` of a day with ``normal_labels`` other labels."""
    return math.ceil(share / (1.0 - share) * normal_labels)


def reviewer_for(params: SimParams, number: int) -> str:
    """The flood's new reviewer account of the ``number``-th flood episode (after the regular ones)."""
    return f"rev-{params.n_reviewers + number:02d}"


def days_by_attack(params: SimParams, start: date) -> Mapping[str, list[str]]:
    """The attack days as ISO dates, per attack, for the manifest."""
    return {
        name: [(start + timedelta(days=d)).isoformat() for d in sorted(days)]
        for name, days in params.attack_days.items()
        if days
    }
