"""The canary rollout's verdicts, one test each: pass, regression, undecided, too few slates, max days.

Slates are built by hand with known clicks and conversions per 1,000 impressions; the lift is
checked against the ratio of sums computed here, and the bootstrap interval against a plain
loop over resamples written independently of `lib.common.bootstrap`.
"""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from fbloop_assets.lib.common.config import CanaryConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.scoring.features import INITIAL_WEIGHTS
from fbloop_assets.lib.weights.registry import Registry, WeightsVersion
from fbloop_assets.lib.weights.rollout import compare_arms, review_canary

CANARY, PRODUCTION = "w-canary", "w0"
CONFIG = CanaryConfig(share=0.5, days=2, max_days=4, min_slates=50, tolerance=0.05, bootstrap_samples=400)


def _slates(
    version: str, n: int, clicks: float, conversions: float, noise: float = 0.0, seed: int = 0
) -> pl.DataFrame:
    """``n`` slates of 100 impressions with about ``clicks`` and ``conversions`` per 1,000 impressions."""
    rng = np.random.default_rng(seed)
    scale = 100 / 1000
    jitter = rng.uniform(1 - noise, 1 + noise, size=(n, 2)) if noise else np.ones((n, 2))
    return pl.DataFrame(
        {
            "request_id": [f"{version}-{i}" for i in range(n)],
            "weights_version": [version] * n,
            "impressions": [100.0] * n,
            "clicks": (clicks * scale * jitter[:, 0]).tolist(),
            "conversions": (conversions * scale * jitter[:, 1]).tolist(),
        }
    )


def _both(canary: pl.DataFrame, production: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([canary, production])


def _reference_interval(
    slates: pl.DataFrame, metric: str, config: CanaryConfig, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap of canary / production - 1, one resample at a time (the reference)."""
    rng = np.random.default_rng(seed)
    arms = {
        a: slates.filter(pl.col("weights_version") == v)
        for a, v in (("canary", CANARY), ("production", PRODUCTION))
    }
    columns = {a: (f[metric].to_numpy(), f["impressions"].to_numpy()) for a, f in arms.items()}
    lifts = []
    for _ in range(config.bootstrap_samples):
        yields = {}
        for arm in ("canary", "production"):
            outcomes, impressions = columns[arm]
            pick = rng.integers(0, len(outcomes), size=len(outcomes))
            yields[arm] = outcomes[pick].sum() / impressions[pick].sum()
        lifts.append(yields["canary"] / yields["production"] - 1.0)
    alpha = (1 - config.confidence) / 2
    low, high = np.quantile(lifts, [alpha, 1 - alpha])
    return float(low), float(high)


def test_a_canary_as_good_as_production_passes() -> None:
    slates = _both(_slates(CANARY, 200, 30, 3, 0.3, 1), _slates(PRODUCTION, 200, 30, 3, 0.3, 2))
    review = compare_arms(slates, CANARY, PRODUCTION, CONFIG)
    assert review.verdict == "pass"
    for metric in ("clicks", "conversions"):
        canary = slates.filter(pl.col("weights_version") == CANARY)
        production = slates.filter(pl.col("weights_version") == PRODUCTION)
        by_hand = (canary[metric].sum() / canary["impressions"].sum()) / (
            production[metric].sum() / production["impressions"].sum()
        ) - 1
        assert review.lift[metric] == pytest.approx(by_hand)
        assert review.lift[metric] >= -CONFIG.tolerance


def test_a_clearly_worse_canary_is_a_regression() -> None:
    slates = _both(_slates(CANARY, 200, 15, 1.5, 0.3, 1), _slates(PRODUCTION, 200, 30, 3, 0.3, 2))
    review = compare_arms(slates, CANARY, PRODUCTION, CONFIG)
    assert review.verdict == "regression" and review.regression
    low, high = review.interval["clicks"] or (0.0, 0.0)
    assert high < -CONFIG.tolerance and review.lift["clicks"] == pytest.approx(-0.5, abs=0.05)
    # the interval agrees with an independent bootstrap within resampling noise
    ref_low, ref_high = _reference_interval(slates, "clicks", CONFIG, seed=99)
    assert low == pytest.approx(ref_low, abs=0.03) and high == pytest.approx(ref_high, abs=0.03)


def test_a_slightly_worse_noisy_canary_is_undecided() -> None:
    # 8% worse (beyond the 5% tolerance) but too noisy to be sure: inconclusive, it keeps serving
    slates = _both(_slates(CANARY, 60, 27.6, 2.76, 0.9, 3), _slates(PRODUCTION, 60, 30, 3, 0.9, 4))
    review = compare_arms(slates, CANARY, PRODUCTION, CONFIG)
    assert review.verdict == "inconclusive", review.detail
    assert any((lift or 0) < -CONFIG.tolerance for lift in review.lift.values())
    assert all(interval and interval[1] >= -CONFIG.tolerance for interval in review.interval.values())


def test_too_few_slates_wait() -> None:
    slates = _both(_slates(CANARY, 49, 15, 1.5), _slates(PRODUCTION, 500, 30, 3))
    review = compare_arms(slates, CANARY, PRODUCTION, CONFIG)
    assert review.verdict == "wait" and review.lift == {"clicks": None, "conversions": None}
    assert "49 canary" in review.detail and "min 50" in review.detail


@pytest.fixture
def canary_running(lake: Lake) -> tuple[Registry, date]:
    """A canary started by the loop for ``day``; it serves from the day after."""
    registry = Registry.of(lake)
    version = registry.save(WeightsVersion.create(dict(INITIAL_WEIGHTS) | {"niche_match": 2.0}, "w0", "ds-1"))
    day = date(2026, 1, 10)
    registry.move("canary", version.version, "start", actor="loop", day=day)
    return registry, day + timedelta(days=1)


def _as_canary(slates: pl.DataFrame, version: str) -> pl.DataFrame:
    return slates.with_columns(
        pl.when(pl.col("weights_version") == CANARY)
        .then(pl.lit(version))
        .otherwise(pl.col("weights_version"))
        .alias("weights_version")
    )


def test_a_canary_is_reviewed_only_after_canary_days_and_then_promoted(
    canary_running: tuple[Registry, date],
) -> None:
    registry, first = canary_running
    canary = registry.current("canary") or ""
    good = _as_canary(
        _both(_slates(CANARY, 200, 30, 3, 0.3, 1), _slates(PRODUCTION, 200, 30, 3, 0.3, 2)), canary
    )
    early = review_canary(registry, first, lambda a, b: good, CONFIG)
    assert early.moves == [] and early.review is None and "served 1 of 2" in early.notes[0]
    done = review_canary(registry, first + timedelta(days=1), lambda a, b: good, CONFIG)
    assert [(m.alias, m.to_version) for m in done.moves] == [("production", canary), ("canary", None)]
    assert done.moves[0].evidence["verdict"] == "pass"


def test_an_undecided_canary_is_rolled_back_at_max_days(canary_running: tuple[Registry, date]) -> None:
    registry, first = canary_running
    canary = registry.current("canary") or ""
    few = _as_canary(_both(_slates(CANARY, 10, 30, 3), _slates(PRODUCTION, 10, 30, 3)), canary)
    for served in range(CONFIG.days, CONFIG.max_days):  # waits, keeps serving
        outcome = review_canary(registry, first + timedelta(days=served - 1), lambda a, b: few, CONFIG)
        assert outcome.moves == [] and "keeps serving" in outcome.notes[0]
    last = review_canary(registry, first + timedelta(days=CONFIG.max_days - 1), lambda a, b: few, CONFIG)
    assert [(m.alias, m.to_version) for m in last.moves] == [("canary", None)]
    assert last.moves[0].reason.startswith(f"canary rolled back: after {CONFIG.max_days} days")
    assert registry.production().version == "w0"
