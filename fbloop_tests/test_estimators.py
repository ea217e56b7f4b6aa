"""Slate estimators against exact expectations: every possible logged slate of small catalogs.

The enumeration here is written apart from `estimators`: slate probabilities by the Plackett-Luce
product over `itertools.permutations`, true values as Σ P_target(slate) · reward(slate). An
estimator is unbiased when Σ P_logging(slate) · estimate(slate) equals that within 1e-9.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fbloop_assets.lib.weights.estimators import (
    cascade_weights,
    exact_marginals,
    ips,
    pl_marginals,
    position_weights,
    sampled_marginals,
)

CLIP = 1e12  # never reached: unbiasedness is a property of the uncapped weights


def slates(logits: np.ndarray, k: int) -> list[tuple[tuple[int, ...], float, list[float]]]:
    """Every ordered slate of k items, its PL probability and the conditional of each pick."""
    w = np.exp(logits)
    out = []
    for slate in itertools.permutations(range(w.size), k):
        remaining, p, conditional = float(w.sum()), 1.0, []
        for i in slate:
            conditional.append(float(w[i]) / remaining)
            p *= conditional[-1]
            remaining -= float(w[i])
        out.append((slate, p, conditional))
    return out


def marginals_by_enumeration(logits: np.ndarray, k: int) -> np.ndarray:
    table = np.zeros((logits.size, k))
    for slate, p, _ in slates(logits, k):
        for r, i in enumerate(slate):
            table[i, r] += p
    return table


def position_based(relevance: np.ndarray, examination: np.ndarray):
    return lambda slate, r: relevance[slate[r]] * examination[r]


def cascade_click(relevance: np.ndarray):
    # a user scans down and clicks the first attractive item: rank r's reward depends on ranks above
    return lambda slate, r: relevance[slate[r]] * math.prod(1.0 - relevance[j] for j in slate[:r])


def true_value(logits: np.ndarray, k: int, reward) -> float:
    return sum(p * sum(reward(s, r) for r in range(k)) for s, p, _ in slates(logits, k))


def expected_estimate(
    logging: np.ndarray, target: np.ndarray, k: int, reward, kind: str
) -> tuple[float, float]:
    """E_logging[IPS] and E_logging[Σ w] / k over every logged slate (one slate, one estimate)."""
    target_marginal = exact_marginals(target, k).probability
    logging_marginal = marginals_by_enumeration(logging, k)
    target_slates = {s: c for s, _, c in slates(target, k)}
    value = normalizer = 0.0
    for slate, p, conditional in slates(logging, k):
        if kind == "position":
            w = position_weights(
                [target_marginal[i, r] for r, i in enumerate(slate)],
                [logging_marginal[i, r] for r, i in enumerate(slate)],
                CLIP,
            )
        else:
            w = cascade_weights(np.zeros(k), target_slates[slate], conditional, CLIP)
        rewards = [reward(slate, r) for r in range(k)]
        estimate = ips(w, rewards, 1)
        assert estimate is not None
        value += p * estimate
        normalizer += p * float(w.sum()) / k
    return value, normalizer


CASES = [  # items, slots, target temperature
    (3, 2, 0.4),
    (4, 2, 1.0),
    (5, 3, 0.2),
    (6, 3, 0.4),
    (8, 2, 2.0),
    (8, 3, 0.2),
]


def _world(n: int, k: int, temperature: float, uniform: bool, seed: int):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=n) / temperature
    logging = np.zeros(n) if uniform else rng.normal(size=n) * 0.8
    relevance = rng.uniform(0.05, 0.9, size=n)
    examination = 1.0 / np.log2(np.arange(2, k + 2))
    return target, logging, relevance, examination


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "non-uniform"])
@pytest.mark.parametrize(("n", "k", "temperature"), CASES)
def test_per_position_ips_is_exact_under_a_position_based_model(n, k, temperature, uniform) -> None:
    target, logging, relevance, examination = _world(n, k, temperature, uniform, seed=n * 10 + k)
    reward = position_based(relevance, examination)
    value, normalizer = expected_estimate(logging, target, k, reward, "position")
    assert value == pytest.approx(true_value(target, k, reward), abs=1e-9)
    assert normalizer == pytest.approx(1.0, abs=1e-9)  # SNIPS's denominator: consistent


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "non-uniform"])
@pytest.mark.parametrize(("n", "k", "temperature"), CASES)
def test_cascade_ips_is_exact_for_rewards_that_depend_on_the_ranks_above(n, k, temperature, uniform) -> None:
    target, logging, relevance, _ = _world(n, k, temperature, uniform, seed=n * 10 + k + 1)
    for reward in (cascade_click(relevance), position_based(relevance, np.ones(k))):
        value, normalizer = expected_estimate(logging, target, k, reward, "cascade")
        assert value == pytest.approx(true_value(target, k, reward), abs=1e-9)
        assert normalizer == pytest.approx(1.0, abs=1e-9)


def test_the_per_position_estimator_is_biased_for_a_cascade_reward() -> None:
    # why both ship: a reward that depends on the ranks above breaks the position-based assumption
    target, logging, relevance, _ = _world(6, 3, 0.4, True, seed=3)
    reward = cascade_click(relevance)
    value, _ = expected_estimate(logging, target, 3, reward, "position")
    assert abs(value - true_value(target, 3, reward)) > 1e-3


def test_the_issues_minimal_case() -> None:
    # A > B > C almost deterministically; uniform 2-slot logging; reward 1 only for B at rank 2
    target, logging = np.array([20.0, 10.0, 0.0]), np.zeros(3)

    def reward(slate, r):
        return float(r == 1 and slate[1] == 1)

    truth = true_value(target, 2, reward)
    assert truth == pytest.approx(0.99995, abs=1e-4)
    for kind in ("position", "cascade"):
        value, _ = expected_estimate(logging, target, 2, reward, kind)
        assert value == pytest.approx(truth, abs=1e-9)


@pytest.mark.parametrize(("n", "k"), [(3, 2), (6, 3), (8, 3), (7, 7)])
def test_exact_marginals_equal_the_enumeration(n, k) -> None:
    logits = np.random.default_rng(n + k).normal(size=n) * 2
    assert np.abs(exact_marginals(logits, k).probability - marginals_by_enumeration(logits, k)).max() < 1e-12


def test_sampled_marginals_are_within_their_reported_error() -> None:
    logits = np.random.default_rng(5).normal(size=8) * 1.5
    exact = marginals_by_enumeration(logits, 3)
    sampled = sampled_marginals(logits, 3, 20_000, np.random.default_rng(0))
    assert not sampled.exact and 0 < sampled.stderr < 0.01
    assert np.abs(sampled.probability - exact).max() < 5 * sampled.stderr
    assert np.allclose(sampled.probability.sum(axis=0), 1.0)  # every position holds one item
    assert (sampled.probability > 0).all()  # Rao-Blackwellized: no item is given 0


def test_large_pools_are_sampled_and_seeded() -> None:
    logits = np.random.default_rng(1).normal(size=120)
    first, again = pl_marginals(logits, 10, 500, seed=3), pl_marginals(logits, 10, 500, seed=3)
    assert not first.exact and np.array_equal(first.probability, again.probability)
    assert pl_marginals(logits[:8], 3, 500, seed=3).exact


def test_cascade_weights_restart_at_every_slate_and_are_capped() -> None:
    w = cascade_weights(
        np.array(["a", "a", "b", "b", "b"]), np.array([0.5, 0.5, 0.2, 0.5, 0.5]),
        np.array([0.25, 0.25, 0.1, 0.1, 1.0]), clip=8.0,
    )  # fmt: skip
    assert w.tolist() == pytest.approx([2.0, 4.0, 2.0, 8.0, 5.0])


def test_weights_refuse_zero_propensities() -> None:
    with pytest.raises(ValueError, match="logged propensities must be positive"):
        position_weights(np.array([0.5]), np.array([0.0]), 10.0)


def _logged_every_slate(kind: str, n: int = 5, k: int = 3, temperature: float = 0.4):
    """Every slate the logging weights can serve from one pool, each a request whose rewards are
    scaled by its probability, so that IPS over the frame is the expectation over logged slates."""
    from datetime import date

    import polars as pl

    from fbloop_assets.lib.scoring.features import FEATURES, INITIAL_WEIGHTS, weight_vector
    from fbloop_assets.lib.weights.estimators import pl_logits

    rng = np.random.default_rng(17)
    phi = rng.random((n, len(FEATURES)))
    logging_w = dict(INITIAL_WEIGHTS)
    target_w = {f: float(v) for f, v in zip(FEATURES, rng.normal(size=len(FEATURES)), strict=True)}
    creators = [f"c{i}" for i in range(n)]
    day = date(2026, 1, 1)
    pools = pl.DataFrame({"serving_day": [day] * n, "campaign_id": "k", "creator_id": creators}).with_columns(
        pl.DataFrame(phi, schema=list(FEATURES), orient="row")
    )
    logging = pl_logits(phi @ weight_vector(logging_w), temperature)
    target = pl_logits(phi @ weight_vector(target_w), temperature)
    relevance = rng.uniform(0.1, 0.9, size=n)
    reward = position_based(relevance, 1.0 / np.log2(np.arange(2, k + 2)))
    marginal = marginals_by_enumeration(logging, k)
    everything = slates(logging, k)
    rows = [
        {"serving_day": day, "campaign_id": "k", "creator_id": creators[i], "request_id": f"r{j:04d}",
         "rank": r + 1, "propensity": conditional[r] if kind == "conditional" else marginal[i, r],
         "weights_version": "served", "impressions": 1000.0,
         "clicks": len(everything) * p * reward(slate, r)}
        for j, (slate, p, conditional) in enumerate(everything)
        for r, i in enumerate(slate)
    ]  # fmt: skip
    examples = pl.DataFrame(rows).join(pools, on=["serving_day", "campaign_id", "creator_id"])
    return examples, pools, target_w, logging_w, true_value(target, k, reward), temperature


@pytest.mark.parametrize("kind", ["conditional", "marginal"])
def test_the_evaluation_path_is_exact_for_either_propensity_kind(kind: str) -> None:
    from fbloop_assets.lib.weights.evaluation import off_policy_metrics
    from fbloop_assets.lib.weights.off_policy import LoggingPolicy, scored, weighted

    examples, pools, target_w, logging_w, truth, temperature = _logged_every_slate(kind)
    policy = LoggingPolicy(kind, {"served": logging_w})
    frame, stderr = weighted(
        scored(examples, target_w), scored(pools, target_w), temperature, CLIP, 100, policy
    )
    out = off_policy_metrics(frame, stderr)
    assert out["ips_clicks_per_slate"] == pytest.approx(truth, abs=1e-9)
    assert out["ope_records_without_logging_policy"] == 0 and out["marginal_stderr"] == 0.0
    if kind == "conditional":
        assert out["cascade_ips_clicks_per_slate"] == pytest.approx(truth, abs=1e-9)
    else:
        assert out["cascade_ips_clicks_per_slate"] is None
        # marginal propensities read as conditional ones: the cascade multiplies the wrong ratios
        misread = LoggingPolicy("conditional", {})
        frame, _ = weighted(
            scored(examples, target_w), scored(pools, target_w), temperature, CLIP, 100, misread
        )
        assert abs(off_policy_metrics(frame, stderr)["cascade_ips_clicks_per_slate"] - truth) > 0.01 * truth
