"""The data guards (`lib.feedback.guards`): label quality and outcome anomalies, pass, warn and fail."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from fbloop_assets.lib.common.config import AnomalyGuard, LabelQualityGuard
from fbloop_assets.lib.feedback.guards import (
    HELD_BACK_SCHEMA,
    GuardResult,
    label_quality,
    outcome_anomalies,
    outcome_counts,
    peer_agreement,
)

DAY = date(2026, 3, 10)
EXTRA = ["kind", "event_type", "creator_id", "campaign_id"]
TRAILING = 7


def _labels(
    day: date,
    rng: np.random.Generator,
    noise: dict[str, float],
    per_reviewer: int = 20,
    double_share: float = 0.5,
    items_from: int = 0,
) -> pl.DataFrame:
    """Labels of one day: each item has a hidden truth; a reviewer flips it with their noise."""
    rows = []
    reviewers = list(noise)
    n_items = len(reviewers) * per_reviewer
    for i in range(items_from, items_from + n_items):
        truth = (i * 7919) % 2
        first = reviewers[i % len(reviewers)]
        judges = [first]
        if len(reviewers) > 1 and rng.random() < double_share:
            judges.append(reviewers[(i + 1 + int(rng.integers(len(reviewers) - 1))) % len(reviewers)])
        for r in judges:
            value = truth if rng.random() >= noise[r] else 1 - truth
            rows.append((f"label:{day}-{i}-{r}", r, f"rec-{i}", float(value), day))
    return pl.DataFrame(
        rows,
        schema={
            "feedback_id": pl.String,
            "reviewer_id": pl.String,
            "recommendation_id": pl.String,
            "value": pl.Float64,
            "partition_date": pl.Date,
        },
        orient="row",
    ).with_columns(
        pl.lit("label").alias("kind"),
        pl.lit("label").alias("event_type"),
        pl.lit("cr-1").alias("creator_id"),
        pl.lit("ca-1").alias("campaign_id"),
    )


def _window(noise: dict[str, float], seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    trailing = pl.concat(
        [_labels(DAY - timedelta(days=d), rng, noise, items_from=d * 10_000) for d in range(TRAILING, 0, -1)]
    )
    return _labels(DAY, rng, noise, items_from=0), trailing


CONFIG = LabelQualityGuard()
CAREFUL = {f"r{i}": 0.05 for i in range(6)}


def test_label_quality_passes_when_reviewers_agree_and_none_floods() -> None:
    day, trailing = _window(CAREFUL)
    result = label_quality(day, trailing, TRAILING, CONFIG)
    assert result.outcome.verdict == "pass", result.outcome.detail
    assert result.outcome.value["krippendorff_alpha"] > CONFIG.alpha_warn
    assert result.held_back.is_empty()


def test_label_quality_warns_on_mediocre_agreement() -> None:
    # a 25% flip rate per reviewer: pairs agree on 62% of items, alpha about (1 - 2 * 0.25)^2 = 0.25
    day, trailing = _window({f"r{i}": 0.25 for i in range(6)})
    result = label_quality(day, trailing, TRAILING, CONFIG)
    assert result.outcome.verdict == "warn", result.outcome.detail
    assert CONFIG.alpha_fail <= result.outcome.value["krippendorff_alpha"] < CONFIG.alpha_warn
    assert result.held_back.is_empty()


def test_label_quality_fails_on_agreement_near_chance() -> None:
    day, trailing = _window({f"r{i}": 0.45 for i in range(6)})
    result = label_quality(day, trailing, TRAILING, CONFIG)
    assert result.outcome.verdict == "fail"
    assert "alpha" in result.outcome.detail
    assert result.outcome.value["krippendorff_alpha_upper"] < CONFIG.alpha_fail


def test_low_alpha_on_a_few_items_warns_but_does_not_block() -> None:
    # what blocked a good loop day: 36 items labeled twice, 86% of the labels useful, pairs
    # agreeing on 78%: alpha 0.08, a figure that swings by ±0.3 from one such day to the next
    units = [(1.0, 1.0)] * 27 + [(1.0, 0.0)] * 8 + [(0.0, 0.0)]
    rows = [
        (f"label:{i}-{j}", f"r{(i + j) % 4}", f"rec-{i}", v, DAY)
        for i, unit in enumerate(units)
        for j, v in enumerate(unit)
    ]
    day = _labels(DAY, np.random.default_rng(0), CAREFUL, per_reviewer=0)
    day = pl.concat(
        [day, pl.DataFrame(rows, schema=day.select(pl.exclude(EXTRA)).schema, orient="row")], how="diagonal"
    )
    day = day.with_columns(
        pl.lit("label").alias("kind"),
        pl.lit("label").alias("event_type"),
        pl.lit("cr-1").alias("creator_id"),
        pl.lit("ca-1").alias("campaign_id"),
    )
    result = label_quality(day, day.clear(), TRAILING, CONFIG)
    value = result.outcome.value
    assert value["items_labeled_twice"] == 36
    assert value["krippendorff_alpha"] == pytest.approx(1 - 16 / (72 * 72 - 62 * 62 - 10 * 10) * 71, abs=1e-4)
    assert value["krippendorff_alpha_upper"] > CONFIG.alpha_fail
    assert result.outcome.verdict == "warn", result.outcome.detail


def test_label_quality_warns_when_agreement_is_not_measurable() -> None:
    rng = np.random.default_rng(3)
    day = _labels(DAY, rng, CAREFUL, double_share=0.0)
    result = label_quality(day, day.clear(), TRAILING, CONFIG)
    assert result.outcome.verdict == "warn"
    assert "not measurable" in result.outcome.detail


def test_a_sudden_flood_is_held_back_and_fails() -> None:
    day, trailing = _window(CAREFUL)
    rng = np.random.default_rng(9)
    flood = _labels(DAY, rng, {"r-bot": 0.5}, per_reviewer=300, double_share=0.0, items_from=50_000)
    result = label_quality(pl.concat([day, flood]), trailing, TRAILING, CONFIG)
    assert result.outcome.verdict == "fail"
    assert "r-bot" in result.outcome.detail
    assert result.outcome.held_back == {"rows": 300, "reviewers": ["r-bot"]}
    assert result.held_back.schema == pl.Schema(HELD_BACK_SCHEMA)
    assert set(result.held_back["reviewer_id"]) == {"r-bot"}
    assert result.held_back["reason"][0].startswith("reviewer r-bot flooded the day")


def test_a_prolific_but_steady_reviewer_is_no_flood() -> None:
    # r0 always gives half of the labels: a large share, but not sudden
    noise = dict(CAREFUL)
    rng = np.random.default_rng(4)
    days = [DAY - timedelta(days=d) for d in range(TRAILING, -1, -1)]
    frames = [
        pl.concat(
            [
                _labels(d, rng, {"r0": 0.05}, per_reviewer=120, items_from=i * 10_000 + 5_000),
                _labels(d, rng, noise, items_from=i * 10_000),
            ]
        )
        for i, d in enumerate(days)
    ]
    result = label_quality(frames[-1], pl.concat(frames[:-1]), TRAILING, CONFIG)
    assert not result.outcome.value["floods"], result.outcome.detail


def test_a_reviewer_who_disagrees_with_everyone_is_held_back() -> None:
    noise = CAREFUL | {"r-odd": 0.9}
    day, trailing = _window(noise)
    agreement = dict(
        peer_agreement(
            pl.concat([trailing, day]).with_columns(
                pl.when(pl.col("value") >= 0.5)
                .then(pl.lit("useful"))
                .otherwise(pl.lit("not_useful"))
                .alias("label_value")
            )
        )
        .select("reviewer_id", "agreement")
        .iter_rows()
    )
    assert agreement["r-odd"] < 0.3 < 0.7 < agreement["r0"]
    result = label_quality(day, trailing, TRAILING, CONFIG)
    assert result.outcome.verdict == "fail"
    assert result.outcome.held_back["reviewers"] == ["r-odd"]
    assert "agrees with peers" in result.outcome.value["floods"]["r-odd"]


# --- outcome anomalies ------------------------------------------------------------------------

ANOMALY = AnomalyGuard()
CREATORS = [f"cr-{i}" for i in range(12)]


def _outcomes(day: date, per_creator: dict[str, tuple[float, float, float, float]]) -> pl.DataFrame:
    """One row per creator and event type; values are counts (impr, eng, clicks, conv)."""
    rows = []
    for creator, counts in per_creator.items():
        for event, value in zip(("impression", "engagement", "click", "conversion"), counts, strict=True):
            rows.append((f"signal:{day}-{creator}-{event}", event, value, creator, f"ca-{creator[-1]}", day))
    return pl.DataFrame(
        rows,
        schema={
            "feedback_id": pl.String,
            "event_type": pl.String,
            "value": pl.Float64,
            "creator_id": pl.String,
            "campaign_id": pl.String,
            "partition_date": pl.Date,
        },
        orient="row",
    ).with_columns(
        pl.lit("outcome").alias("kind"),
        pl.lit(None, pl.String).alias("reviewer_id"),
        pl.lit("rec-1").alias("recommendation_id"),
    )


def _history(seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = [DAY - timedelta(days=d) for d in range(ANOMALY.trailing_days, 0, -1)]
    frames = [
        _outcomes(d, {c: (5000.0, float(rng.poisson(150)), 60.0, 15.0) for c in CREATORS}) for d in days
    ]
    return outcome_counts(pl.concat(frames))


def _today(spike: tuple[float, float, float, float] | None) -> pl.DataFrame:
    normal = {c: (5000.0, 150.0, 60.0, 15.0) for c in CREATORS}
    if spike:
        normal["cr-0"] = spike
    return _outcomes(DAY, normal)


def _judge(today: pl.DataFrame, history: pl.DataFrame) -> GuardResult:
    return outcome_anomalies(outcome_counts(today), history, today.lazy(), ANOMALY)


def test_ordinary_days_raise_no_anomaly() -> None:
    result = _judge(_today(None), _history())
    assert result.outcome.verdict == "pass", result.outcome.detail
    assert result.held_back.is_empty()


def test_more_engagement_with_the_conversions_to_match_is_no_anomaly() -> None:
    # a creator whose content landed: four times the engagement and four times the buyers
    result = _judge(_today((5000.0, 600.0, 240.0, 60.0)), _history())
    assert result.outcome.verdict == "pass", result.outcome.detail


def test_a_moderate_jump_without_conversions_warns_and_holds_nothing() -> None:
    # four times the usual rate: z = (4 - 1) / relative_spread = 6, between z_warn and z_fail
    result = _judge(_today((5000.0, 600.0, 60.0, 5.0)), _history())
    assert result.outcome.verdict == "warn", result.outcome.detail
    assert ANOMALY.z_warn < result.outcome.value["findings"][0]["z"] <= ANOMALY.z_fail
    assert result.held_back.is_empty()


def test_bought_engagement_is_held_back_and_fails() -> None:
    result = _judge(_today((5000.0, 3000.0, 300.0, 15.0)), _history())
    assert result.outcome.verdict == "fail"
    assert "creator cr-0" in result.outcome.detail
    held = result.held_back
    assert sorted(held["event_type"]) == ["click", "engagement"]
    assert set(held["creator_id"]) == {"cr-0"}
    assert result.outcome.held_back["entities"] == ["creator cr-0"]


def test_a_creator_without_trailing_days_is_judged_through_its_campaign() -> None:
    # nothing to compare the creator with, but its campaign's engagement still jumps without buyers
    history = _history().filter(pl.col("creator_id") != "cr-0")
    result = _judge(_today((5000.0, 3000.0, 300.0, 15.0)), history)
    assert [f["entity"] for f in result.outcome.value["findings"]] == ["campaign"]
    assert result.outcome.held_back["entities"] == ["campaign ca-0"]
    assert set(result.held_back["creator_id"]) == {"cr-0", "cr-10"}
