"""Plackett-Luce serving: the logged propensities are the policy's true probabilities."""

from collections import Counter

import numpy as np
import pytest

from fbloop_assets.lib.scoring.policy import plackett_luce_slates, slate_propensities


def textbook_slate_probability(scores: np.ndarray, slate: tuple[int, ...], temperature: float) -> float:
    weights = np.exp(scores / temperature)
    remaining, probability = weights.sum(), 1.0
    for item in slate:
        probability *= weights[item] / remaining
        remaining -= weights[item]
    return probability


def test_propensities_multiply_to_the_textbook_slate_probability() -> None:
    scores = np.array([2.0, 1.0, 0.5, -1.0, 0.0])
    slates = np.array([[0, 1, 2], [4, 3, 0], [3, 2, 1]])
    propensity = slate_propensities((scores - scores.max()) / 0.7, slates)
    for slate, p in zip(slates, propensity, strict=True):
        assert p.prod() == pytest.approx(textbook_slate_probability(scores, tuple(slate), 0.7), rel=1e-12)


def test_sampled_slates_follow_the_policy() -> None:
    # 100k draws from a 4-item pool: each two-item slate's frequency within 1 point of its probability
    scores = np.array([1.0, 0.5, 0.0, -1.0])
    chosen, _ = plackett_luce_slates(scores, 100_000, 2, 0.7, np.random.default_rng(3))
    counts = Counter(map(tuple, chosen.tolist()))
    for slate, n in counts.items():
        assert n / 100_000 == pytest.approx(textbook_slate_probability(scores, slate, 0.7), abs=0.01)
    assert len(counts) == 12  # every ordered pair of distinct items, none repeated within a slate


def test_slates_are_distinct_items_and_propensities_in_range() -> None:
    scores = np.random.default_rng(0).normal(size=300) * 3
    chosen, propensity = plackett_luce_slates(scores, 500, 10, 0.2, np.random.default_rng(1))
    assert chosen.shape == propensity.shape == (500, 10)
    assert all(len(set(row)) == 10 for row in chosen.tolist())
    assert (propensity > 0).all() and (propensity <= 1).all()


def test_a_pool_smaller_than_the_slate_gives_a_shorter_slate() -> None:
    chosen, propensity = plackett_luce_slates(np.array([0.3, 0.1]), 4, 10, 1.0, np.random.default_rng(0))
    assert chosen.shape == (4, 2)
    assert np.allclose(propensity[:, 1], 1.0)  # the last remaining item is certain


def test_temperature_must_be_positive() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        plackett_luce_slates(np.array([1.0]), 1, 1, 0.0, np.random.default_rng(0))
