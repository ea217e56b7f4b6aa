"""Registry, re-weighting and offline evaluation as pure functions, against hand-computed cases."""

import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from fbloop_assets.lib.common.config import TrainingConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.scoring.features import FEATURES
from fbloop_assets.lib.weights.evaluation import exposure_metrics, off_policy_metrics, ranking_metrics
from fbloop_assets.lib.weights.off_policy import LoggingPolicy, weighted
from fbloop_assets.lib.weights.registry import INITIAL, Registry, UnknownVersion, WeightsVersion
from fbloop_assets.lib.weights.training import bounded_step, fit_direction, propensity_weights

DAY = date(2026, 1, 1)


@pytest.fixture
def registry(lake: Lake) -> Registry:
    return Registry.of(lake)


def test_versions_are_content_addressed_and_immutable(registry: Registry) -> None:
    a = WeightsVersion.create(INITIAL.weights, "w0", "ds-1")
    b = WeightsVersion.create(dict(INITIAL.weights), "w0", "ds-1", fit={"note": "refit"})
    assert a.version == b.version and a.version.startswith("w-")
    assert WeightsVersion.create(INITIAL.weights, "w0", "ds-2").version != a.version
    registry.save(a)
    assert registry.save(b).fit == a.fit  # first write wins: a version never changes
    assert registry.load(a.version).weights == a.weights
    assert registry.load(a.version) == a
    with pytest.raises(UnknownVersion):
        registry.load("w-nothere")


def test_alias_history_is_append_only_and_dated(registry: Registry) -> None:
    assert registry.production().version == "w0" and registry.current("canary") is None
    v1 = registry.save(WeightsVersion.create(INITIAL.weights | {"niche_match": 2.0}, "w0", "ds-1"))
    v2 = registry.save(WeightsVersion.create(INITIAL.weights | {"niche_match": 3.0}, v1.version, "ds-2"))
    registry.move("production", v1.version, "checks passed", actor="loop", day=date(2026, 1, 8))
    assert registry.move("production", v1.version, "again", actor="loop", day=date(2026, 1, 8)) is None
    registry.move("production", v2.version, "checks passed", actor="loop", day=date(2026, 1, 9))
    assert [(m.from_version, m.to_version) for m in registry.history("production")] == [
        ("w0", v1.version),
        (v1.version, v2.version),
    ]
    # a move decided by the loop for day D governs serving from D + 1 on
    assert registry.production_before(date(2026, 1, 8)).version == "w0"
    assert registry.production_before(date(2026, 1, 9)).version == v1.version
    assert registry.production_before(date(2026, 1, 10)).version == v2.version
    assert registry.production().version == v2.version
    with pytest.raises(ValueError, match="cannot move it"):
        registry.move("production", v1.version, "a late backfill", actor="loop", day=date(2026, 1, 5))
    # a move by hand is never refused for its date, and canary can be cleared, production not
    registry.move("canary", v1.version, "try it", actor="ana")
    assert registry.current("canary") == v1.version
    registry.move("canary", None, "enough", actor="ana")
    assert registry.current("canary") is None
    with pytest.raises(ValueError, match="cannot be cleared"):
        registry.move("production", None, "oops", actor="ana")
    with pytest.raises(ValueError, match="unknown alias"):
        registry.move("prod", v1.version, "typo", actor="ana")
    moves = registry.history()
    assert [m.id for m in moves] == sorted(m.id for m in moves) and moves[-1].actor == "ana"


def test_bounded_step_moves_each_weight_at_most_max_step() -> None:
    production = dict.fromkeys(FEATURES, 1.0)
    target = production | {"niche_match": 3.0, "follower_tier": -1.0, "cost_efficiency": 1.2}
    step = bounded_step(production, target, 0.5)
    assert step["niche_match"] == 1.5 and step["follower_tier"] == 0.5 and step["cost_efficiency"] == 1.2
    assert step["past_conversion_rate"] == 1.0


def test_propensity_weights_are_capped_and_mean_one() -> None:
    w = propensity_weights(np.array([0.5, 0.01, 0.001]), clip=10.0)
    assert w.mean() == pytest.approx(1.0)
    # 1/0.5 = 2, 1/max(0.01, 0.1) = 10, 1/max(0.001, 0.1) = 10 -> 2 : 10 : 10
    assert w[1] == pytest.approx(w[2]) and w[1] / w[0] == pytest.approx(5.0)


def _examples(n: int, rng: np.random.Generator) -> pl.DataFrame:
    phi = rng.random((n, len(FEATURES)))
    useful = (phi[:, 0] - phi[:, 3] + rng.normal(0, 0.2, n) > 0).astype(float)  # niche helps, tier hurts
    impressions = np.full(n, 1000.0)
    clicks = rng.binomial(1000, 0.01 + 0.02 * phi[:, 0]).astype(float)
    return pl.DataFrame(
        {
            "propensity": rng.uniform(0.05, 0.5, n),
            "impressions": impressions,
            "engagements": np.full(n, 50.0),
            "clicks": clicks,
            "conversions": rng.binomial(clicks.astype(int), 0.05).astype(float),
            "n_labels": np.ones(n, dtype=np.int64),
            "label_useful": useful,
            "label_confidence": np.ones(n),
            "holdout": np.zeros(n, dtype=bool),
        }
    ).with_columns(pl.DataFrame(phi, schema=list(FEATURES), orient="row"))


def test_the_fit_recovers_the_direction_of_the_evidence() -> None:
    production = INITIAL.weights
    fit = fit_direction(_examples(3000, np.random.default_rng(1)), production, TrainingConfig())
    assert fit is not None
    assert fit.direction["niche_match"] > 0 > fit.direction["follower_tier"]
    norm = math.sqrt(sum(v * v for v in fit.direction.values()))
    assert norm == pytest.approx(math.sqrt(sum(v * v for v in production.values())))
    assert fit.rows == {"label": 3000, "conversion": 3000, "click": 3000, "engagement": 3000}


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(pl.lit(DAY).alias("serving_day"))


def test_ranking_metrics_by_hand() -> None:
    # one campaign, three labeled creators; scores rank c, a, b; gains a=1, b=0, c=0.5
    examples = _frame(
        [
            {"campaign_id": "k", "creator_id": "a", "n_labels": 1, "label_useful": 1.0, "s": 2.0},
            {"campaign_id": "k", "creator_id": "b", "n_labels": 1, "label_useful": 0.0, "s": 1.0},
            {"campaign_id": "k", "creator_id": "c", "n_labels": 2, "label_useful": 0.5, "s": 3.0},
        ]
    )
    result = ranking_metrics(examples, 5)
    dcg = 0.5 / math.log2(2) + 1.0 / math.log2(3) + 0.0
    ideal = 1.0 / math.log2(2) + 0.5 / math.log2(3)
    assert result["ndcg_at_5"] == pytest.approx(dcg / ideal)
    assert result["precision_at_5"] == pytest.approx(2 / 5)  # a and c (gain >= 0.5) in the top 5, over 5
    assert result["labeled_records"] == 3 and result["queries"] == 1


def test_off_policy_estimates_by_hand() -> None:
    # pool of three creators with standardized logits; one logged slate (x at rank 1, y at rank 2)
    scores = {"x": 1.0, "y": 0.0, "z": -1.0}
    spread = float(np.std(list(scores.values())))
    pools = _frame([{"campaign_id": "k", "creator_id": c, "s": s} for c, s in scores.items()])
    e = {c: math.exp(s / spread) for c, s in scores.items()}
    total = sum(e.values())
    p_x = e["x"] / total
    p_y_after_x = e["y"] / (total - e["x"])
    # marginal of y at rank 2: x or z first, then y
    m_y2 = p_x * p_y_after_x + e["z"] / total * e["y"] / (total - e["z"])
    examples = _frame(
        [
            {"campaign_id": "k", "creator_id": "x", "request_id": "r", "rank": 1, "propensity": 0.5,
             "conversions": 2.0, "engagements": 10.0, "clicks": 5.0, "impressions": 1000.0, "s": 1.0,
             "weights_version": "v"},
            {"campaign_id": "k", "creator_id": "y", "request_id": "r", "rank": 2, "propensity": 0.25,
             "conversions": 1.0, "engagements": 4.0, "clicks": 1.0, "impressions": 500.0, "s": 0.0,
             "weights_version": "v"},
        ]
    )  # fmt: skip
    marginal = LoggingPolicy("marginal")
    frame, stderr = weighted(examples, pools, temperature=1.0, clip=10.0, samples=100, policy=marginal)
    out = off_policy_metrics(frame, stderr)
    w = np.array([p_x / 0.5, m_y2 / 0.25])
    assert frame["w_position"].to_list() == pytest.approx(w.tolist())
    assert frame["w_cascade"].null_count() == 2  # a marginal gives no ranks above
    assert out["ips_conversions_per_slate"] == pytest.approx(w @ [2.0, 1.0])
    assert out["snips_conversions_per_slate"] == pytest.approx(w @ [2.0, 1.0] / w.sum() * 2)
    assert out["snips_conversion_yield"] == pytest.approx(w @ [2.0, 2.0] / w.sum())
    assert out["snips_click_yield"] == pytest.approx(w @ [5.0, 2.0] / w.sum())
    assert out["cascade_ips_clicks_per_slate"] is None and stderr == {"target": 0.0, "logging": 0.0}
    frame, _ = weighted(examples, pools, 1.0, 10.0, 100, LoggingPolicy("conditional"))
    cascade = [p_x / 0.5, p_x / 0.5 * p_y_after_x / 0.25]
    assert frame["w_cascade"].to_list() == pytest.approx(cascade)
    assert frame["w_position"].null_count() == 2  # the serving version "v" is unknown
    clipped, _ = weighted(examples, pools, 1.0, 1.0, 100, marginal)
    assert clipped["w_position"].to_list() == pytest.approx(np.minimum(w, 1.0).tolist())


def test_exposure_of_deterministic_rankings() -> None:
    pools = _frame(
        [{"campaign_id": "k", "creator_id": c, "s": s} for c, s in (("x", 3.0), ("y", 2.0), ("z", 1.0))]
    )
    examples = _frame([{"campaign_id": "k", "request_id": r} for r in ("r1", "r2")])
    out = exposure_metrics(examples, pools, slate_size=2)
    assert out["catalog_coverage"] == pytest.approx(2 / 3)
    assert out["exposure_gini"] == pytest.approx(1 / 3)  # exposures 2, 2, 0
    assert out["ranked_requests"] == 2
