"""Model guards (step size, no regression, exposure) and their evaluation inputs, by hand."""

import time
from datetime import date

import numpy as np
import polars as pl
import pytest

from fbloop_assets.lib.common.bootstrap import resampled_totals
from fbloop_assets.lib.common.config import ExposureGuard, FbloopConfig, RegressionGuard, StepGuard
from fbloop_assets.lib.scoring.features import FEATURES, INITIAL_WEIGHTS
from fbloop_assets.lib.weights.evaluation import evaluate, exposure_metrics, paired_yields
from fbloop_assets.lib.weights.guards import exposure, no_regression, relative_yield_interval, step_size
from fbloop_assets.lib.weights.off_policy import LoggingPolicy

DAY = date(2026, 1, 1)
PRODUCTION = dict.fromkeys(FEATURES, 1.0)


def test_step_size_passes_a_small_step() -> None:
    out = step_size(PRODUCTION | {"niche_match": 1.2, "cost_efficiency": 0.9}, PRODUCTION, 0.5, StepGuard())
    assert out.verdict == "pass" and out.value["feature"] == "niche_match" and out.value["largest"] == 0.2


def test_step_size_warns_near_max_step() -> None:
    # exactly max_step is allowed (a bounded step lands there); above 0.9 * 0.5 it warns
    for step in (0.46, 0.5):
        out = step_size(
            PRODUCTION | {"follower_tier": 1.0 - step}, PRODUCTION, 0.5, StepGuard(warn_share=0.9)
        )
        assert out.verdict == "warn" and "follower_tier" in out.detail


def test_step_size_fails_beyond_max_step() -> None:
    out = step_size(PRODUCTION | {"engagement_quality": 1.6}, PRODUCTION, 0.5, StepGuard())
    assert out.verdict == "fail" and "engagement_quality 1.0000 → 1.6000 (+0.6000)" in out.detail
    lacking = step_size({"niche_match": 1.0}, PRODUCTION, 0.5, StepGuard())
    assert lacking.verdict == "fail" and "follower_tier" in lacking.detail


def _paired(slates: int, seed: int, candidate_factor: float = 1.0, jitter: float = 0.0) -> pl.DataFrame:
    """Two recommendations per slate: one with yield y, one with ``candidate_factor`` * y.

    Production weighs only the first, the candidate only the second, so the candidate's SNIPS
    yield is ``candidate_factor`` times production's (exactly, without ``jitter``; on average
    with a uniform factor of 1 ± ``jitter`` on each candidate yield).
    """
    rng = np.random.default_rng(seed)
    y, w, zero = rng.gamma(0.5, 2.0, slates), rng.uniform(0.5, 2.0, slates), np.zeros(slates)
    factor = candidate_factor * rng.uniform(1 - jitter, 1 + jitter, slates)
    return pl.DataFrame(
        {
            "request_id": np.repeat([f"q{i:05d}" for i in range(slates)], 2),
            "w_candidate": np.column_stack([zero, w]).ravel(),
            "w_production": np.column_stack([w, zero]).ravel(),
            "yield": np.column_stack([y, factor * y]).ravel(),
        }
    )


def _snips(paired: pl.DataFrame, arm: str) -> float:
    w, y = paired[f"w_{arm}"].to_numpy(), paired["yield"].to_numpy()
    return float(np.sum(w * y) / np.sum(w))


def _metrics(paired: pl.DataFrame, arm: str, ndcg: float | None = 0.8) -> dict:
    return {"ndcg_at_5": ndcg, "snips_conversion_yield": _snips(paired, arm)}


def test_bootstrap_of_identical_arms_is_centred_on_zero() -> None:
    same = _paired(400, 1).with_columns(pl.col("w_production").alias("w_candidate"))
    bounds = relative_yield_interval(same, 500, 0.9)
    assert bounds is not None
    estimate, lower, upper = bounds
    assert estimate == lower == upper == pytest.approx(0.0)
    out = no_regression(_metrics(same, "candidate"), _metrics(same, "production"), same, RegressionGuard())
    assert out.verdict == "pass", out.detail
    assert out.value["snips_relative"]["lower"] == pytest.approx(0.0)


def test_bootstrap_interval_brackets_a_known_difference() -> None:
    # resampling the same slates pairs the arms: a narrow interval around about -10%
    paired = _paired(2000, 2, candidate_factor=0.9, jitter=0.5)
    bounds = relative_yield_interval(paired, 500, 0.9)
    assert bounds is not None
    estimate, lower, upper = bounds
    assert estimate == pytest.approx(_snips(paired, "candidate") / _snips(paired, "production") - 1)
    assert -0.15 < lower < estimate < upper < -0.05
    assert relative_yield_interval(paired, 500, 0.9, seed=3) == relative_yield_interval(
        paired, 500, 0.9, seed=3
    )


def test_no_regression_passes_an_equal_or_better_candidate() -> None:
    better = _paired(500, 3, candidate_factor=1.1)
    out = no_regression(
        _metrics(better, "candidate", 0.81), _metrics(better, "production"), better, RegressionGuard()
    )
    assert out.verdict == "pass" and out.detail.startswith("no regression")


def test_no_regression_warns_when_slightly_worse_within_tolerance() -> None:
    same = _paired(500, 4).with_columns(pl.col("w_production").alias("w_candidate"))
    ndcg = no_regression(
        _metrics(same, "candidate", 0.795), _metrics(same, "production"), same, RegressionGuard()
    )
    assert ndcg.verdict == "warn" and "NDCG@5 0.7950 vs 0.8000" in ndcg.detail
    # a yield about 2% lower on 3,000 slates: the interval stays above -5%
    paired = _paired(3000, 5, candidate_factor=0.98, jitter=0.2)
    snips = no_regression(
        _metrics(paired, "candidate"), _metrics(paired, "production"), paired, RegressionGuard()
    )
    assert snips.verdict == "warn" and snips.detail.startswith("slightly worse"), snips.detail
    assert -0.05 < snips.value["snips_relative"]["lower"] < snips.value["snips_relative"]["estimate"] < -0.01


def test_no_regression_fails_a_candidate_with_halved_yields() -> None:
    halved = _paired(500, 6, candidate_factor=0.5)
    out = no_regression(
        _metrics(halved, "candidate"), _metrics(halved, "production"), halved, RegressionGuard()
    )
    assert out.verdict == "fail" and out.detail.startswith("regression in SNIPS conversion yield")
    assert out.value["snips_relative"]["estimate"] == pytest.approx(-0.5)
    assert out.value["snips_relative"]["upper"] < -0.05


def test_no_regression_fails_on_ndcg_beyond_tolerance() -> None:
    same = _paired(500, 7).with_columns(pl.col("w_production").alias("w_candidate"))
    out = no_regression(
        _metrics(same, "candidate", 0.78), _metrics(same, "production"), same, RegressionGuard()
    )
    assert out.verdict == "fail" and out.detail.startswith("regression in NDCG@5")
    assert out.threshold["ndcg_at_5_floor"] == pytest.approx(0.79)


def test_no_regression_fails_when_not_measurable_and_warns_without_candidate() -> None:
    same = _paired(50, 8)
    no_ndcg = no_regression(
        _metrics(same, "candidate", None), _metrics(same, "production"), same, RegressionGuard()
    )
    assert no_ndcg.verdict == "fail" and no_ndcg.detail.startswith("not measurable: NDCG@5")
    no_slates = no_regression(
        _metrics(same, "candidate"), _metrics(same, "production"), None, RegressionGuard()
    )
    assert no_slates.verdict == "fail" and "no paired held-out slates" in no_slates.detail
    none = no_regression(None, _metrics(same, "production"), None, RegressionGuard())
    assert none.verdict == "warn" and none.detail == "no candidate to judge"


def test_bootstrap_of_5000_slates_takes_well_under_a_second() -> None:
    # ten recommendations per slate, as served; 500 resamples
    rng = np.random.default_rng(9)
    n = 5000 * 10
    paired = pl.DataFrame(
        {
            "request_id": np.repeat([f"q{i:05d}" for i in range(5000)], 10),
            "w_candidate": rng.uniform(0, 3, n),
            "w_production": rng.uniform(0, 3, n),
            "yield": rng.gamma(0.5, 2.0, n),
        }
    )
    started = time.perf_counter()
    out = no_regression(
        _metrics(paired, "candidate"),
        _metrics(paired, "production"),
        paired,
        RegressionGuard(bootstrap_samples=500),
    )
    assert time.perf_counter() - started < 1.0
    assert out.value["slates"] == 5000


EXPOSURE = ExposureGuard(gini_tolerance=0.02, coverage_tolerance=0.02, new_creator_tolerance=0.02)
BASE = {"exposure_gini": 0.60, "catalog_coverage": 0.30, "new_creator_share": 0.10}


def test_exposure_passes_when_no_metric_is_worse() -> None:
    out = exposure(BASE | {"exposure_gini": 0.55, "new_creator_share": 0.12}, BASE, EXPOSURE)
    assert out.verdict == "pass", out.detail


def test_exposure_warns_when_worse_within_tolerance() -> None:
    out = exposure(BASE | {"catalog_coverage": 0.29}, BASE, EXPOSURE)
    assert out.verdict == "warn" and "catalog_coverage 0.2900 vs 0.3000 (worse by 0.0100" in out.detail
    assert "exposure_gini" not in out.detail
    # a metric production's record lacks is reported, not a failure
    assert exposure(BASE, {"exposure_gini": 0.6, "catalog_coverage": 0.3}, EXPOSURE).verdict == "warn"


def test_exposure_fails_when_a_metric_is_worse_beyond_tolerance() -> None:
    out = exposure(BASE | {"exposure_gini": 0.65, "new_creator_share": 0.05}, BASE, EXPOSURE)
    assert out.verdict == "fail"
    assert "exposure_gini 0.6500 vs 0.6000 (worse by 0.0500" in out.detail
    assert "new_creator_share 0.0500 vs 0.1000 (worse by 0.0500" in out.detail
    assert exposure(None, BASE, EXPOSURE).verdict == "warn"


def test_new_creator_share_counts_exposure_of_creators_never_logged() -> None:
    # top 2 of x, y, z for each of two requests: x and y shown twice; only x was ever logged
    pools = pl.DataFrame({"campaign_id": "k", "creator_id": ["x", "y", "z"], "s": [3.0, 2.0, 1.0]})
    pools = pools.with_columns(pl.lit(DAY).alias("serving_day"))
    examples = pl.DataFrame({"campaign_id": "k", "request_id": ["r1", "r2"], "creator_id": ["x", "x"]})
    out = exposure_metrics(examples.with_columns(pl.lit(DAY).alias("serving_day")), pools, slate_size=2)
    assert out["new_creator_share"] == pytest.approx(0.5)
    assert out["exposure_gini"] == pytest.approx(1 / 3) and out["catalog_coverage"] == pytest.approx(2 / 3)


def _logged(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two campaigns' pools of 8 creators and 40 logged slates of 3 each, plus two odd rows."""
    rng = np.random.default_rng(seed)
    pools, examples = [], []
    for campaign in ("k1", "k2"):
        phi = rng.random((8, len(FEATURES)))
        creators = [f"{campaign}-c{i}" for i in range(8)]
        pools.append(
            pl.DataFrame({"serving_day": DAY, "campaign_id": campaign, "creator_id": creators}).with_columns(
                pl.DataFrame(phi, schema=list(FEATURES), orient="row")
            )
        )
        for r in range(40):
            for rank, i in enumerate(rng.choice(8, 3, replace=False), start=1):
                impressions = float(rng.choice([0, 200, 1000]))
                examples.append(
                    {
                        "serving_day": DAY,
                        "campaign_id": campaign,
                        "creator_id": creators[i],
                        "request_id": f"{campaign}-r{r}",
                        "rank": rank,
                        "propensity": float(rng.uniform(0.05, 0.6)),
                        "weights_version": "served",
                        "impressions": impressions,
                        "engagements": float(rng.poisson(5)),
                        "conversions": float(rng.poisson(impressions / 200)),
                        "n_labels": int(rng.integers(0, 2)),
                        "label_useful": float(rng.random() < 0.5),
                        **dict(zip(FEATURES, phi[i].tolist(), strict=True)),
                    }
                )
    odd = examples[0] | {"request_id": "no-features", **dict.fromkeys(FEATURES)}
    return pl.concat(pools), pl.DataFrame([*examples, odd, examples[1] | {"campaign_id": "no-pool"}])


def test_paired_yields_reproduce_each_arms_snips_conversion_yield() -> None:
    pools, examples = _logged(11)
    config = FbloopConfig()
    candidate = INITIAL_WEIGHTS | {"niche_match": 2.0, "follower_tier": 0.2}
    logged = LoggingPolicy("conditional", {"served": INITIAL_WEIGHTS | {"niche_match": 0.5}})
    paired = paired_yields(candidate, INITIAL_WEIGHTS, examples, pools, config, logged)
    assert paired.columns == ["request_id", "w_candidate", "w_production", "yield"]
    assert paired.height == 240  # the row without features and the one without a pool are left out
    for arm, weights in (("candidate", candidate), ("production", INITIAL_WEIGHTS)):
        assert _snips(paired, arm) == pytest.approx(
            evaluate(weights, examples, pools, config, logged)["snips_conversion_yield"]
        )
    assert not np.allclose(paired["w_candidate"].to_numpy(), paired["w_production"].to_numpy())


def test_resampled_totals_draw_every_unit_count_with_replacement() -> None:
    # a column of ones totals the number of units drawn: always n; the other column varies
    sums = np.column_stack([np.ones(50), np.arange(50.0)])
    totals = resampled_totals(sums, 300, np.random.default_rng(1))
    assert totals.shape == (300, 2) and (totals[:, 0] == 50).all()
    assert totals[:, 1].std() > 0 and abs(totals[:, 1].mean() - sums[:, 1].sum()) < 0.05 * sums[:, 1].sum()
    again = resampled_totals(sums, 300, np.random.default_rng(1))
    assert (again == totals).all()
