"""Offline metrics against hand-computed cases (trec_eval conventions, textbook IPS and SNIPS)."""

import math

import numpy as np
import pytest

from fbloop_assets.lib.weights.estimators import ips, position_weights, snips
from fbloop_assets.lib.weights.metrics import coverage, gini, ndcg_at_k, precision_at_k


def test_ndcg_matches_a_hand_computed_case() -> None:
    # ranked relevances 1,0,1,0,0; judged 1,1,0,0,0 -> ideal 1,1
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k([1, 0, 1, 0, 0], [1, 1, 0, 0, 0]) == pytest.approx(dcg / idcg)


def test_ndcg_uses_linear_gain_and_cuts_at_k() -> None:
    # graded relevance: gain is the grade itself (not 2^rel - 1); the 6th item is beyond the cut
    dcg = 2 / math.log2(2) + 0 + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k([2, 0, 1, 0, 0, 1], [2, 1, 1, 0, 0, 0]) == pytest.approx(dcg / idcg)


def test_ndcg_ideal_counts_judged_items_that_were_not_ranked() -> None:
    # trec_eval: a relevant judged item missing from the ranking lowers NDCG
    assert ndcg_at_k([1], [1, 1]) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_ndcg_is_undefined_without_relevant_items() -> None:
    assert ndcg_at_k([0, 0], [0, 0]) is None


def test_precision_divides_by_k_even_for_short_rankings() -> None:
    assert precision_at_k([1, 0, 1, 1, 0, 1]) == pytest.approx(3 / 5)
    assert precision_at_k([1, 1]) == pytest.approx(2 / 5)


def test_ips_and_snips_match_the_textbook_formulas() -> None:
    rewards = np.array([1.0, 0.0, 2.0])
    logged = np.array([0.5, 0.25, 0.1])
    target = np.array([0.25, 0.5, 0.4])  # weights 0.5, 2, 4
    w = position_weights(target, logged, clip=10.0)
    assert ips(w, rewards, 3) == pytest.approx((0.5 * 1 + 2 * 0 + 4 * 2) / 3)
    assert snips(w, rewards) == pytest.approx((0.5 + 8) / (0.5 + 2 + 4))


def test_clipping_bounds_the_importance_weights() -> None:
    rewards, logged, target = np.array([1.0, 1.0]), np.array([0.01, 0.5]), np.array([0.5, 0.5])
    assert ips(position_weights(target, logged, clip=5.0), rewards, 2) == pytest.approx((5.0 + 1.0) / 2)


def test_gini_of_equal_and_concentrated_exposure() -> None:
    assert gini([3, 3, 3, 3]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n - 1) / n when one item takes everything
    assert gini([1, 2, 3]) == pytest.approx(2 / 9)


def test_coverage_counts_distinct_creators_shown() -> None:
    assert coverage(["a", "b", "a"], 4) == pytest.approx(0.5)
