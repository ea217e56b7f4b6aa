"""Off-policy estimators for ranked slates, the one place their formulas live.

A Plackett-Luce (PL) policy over a pool with logits ``l`` draws a slate rank by rank: at rank r it
picks item i among those not yet placed with probability ``exp(l_i) / Σ_remaining exp(l_j)`` (the
*conditional* probability, what fbloop logs as ``propensity``). The *marginal* probability of item
i at position r sums that over every prefix of r - 1 items above it (`pl_marginals`).

Two estimators of a target policy's expected reward per slate from slates a logging policy served:

- **Per-position IPS / SNIPS** (`position_weights`): the weight of the logged (position r, item i)
  is ``P_target(i at r) / P_logging(i at r)``, both *marginal*. Unbiased when the expected reward of
  a recommendation depends only on its item and position, not on the items around it (a
  position-based click model; conversions per 1,000 impressions of a creator at a rank are such a
  reward). Its variance stays small at deep ranks. **The gate (`no_regression`) uses this one**:
  the yield it compares is a per-recommendation reward, and the cascade's product of ratios over
  ten ranks would make its bootstrap interval too wide to ever pass.
- **Cascade IPS / SNIPS** (`cascade_weights`): the weight at rank r is the product over ranks
  1..r of ``P_target(pick | above) / P_logging(pick | above)``, the ratio of the probabilities of
  the whole logged prefix. Unbiased for any reward at rank r that depends on the items at ranks
  1..r (a cascade click model, where a user stops at the first good item), at the price of a
  variance that grows with the rank. It needs *conditional* logged propensities.

IPS divides the weighted rewards by the number of slates. SNIPS divides them by the sum of the
weights over the number of recommendations per slate: each position's weights have expectation 1,
so the normalizer's expectation is exactly the slate length and SNIPS is consistent, with a small
finite-sample bias and far less variance. Weights are capped at ``clip`` (a bias traded for
variance; the tests of exactness use an unreachable cap).

Marginals are exact (an enumeration of every ordered prefix, `exact_marginals`) while the prefixes
number at most ``EXACT_PREFIXES``; beyond, a seeded Rao-Blackwellized Monte Carlo
(`sampled_marginals`): per sampled slate the *conditional* probability of every remaining item at
each position is averaged, not a 0/1 count, so every item keeps a positive marginal and the error
is small; its largest standard error is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EXACT_PREFIXES = 20_000


@dataclass(frozen=True)
class Marginals:
    """``probability[i, r]``: P(item i at position r + 1); ``stderr``: the largest standard error."""

    probability: np.ndarray
    stderr: float
    exact: bool
    samples: int = 0


def pl_logits(scores: np.ndarray, temperature: float) -> np.ndarray:
    """The PL logits serving uses: scores over their spread in the pool, over the temperature."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scores = np.asarray(scores, dtype=np.float64)
    spread = float(np.std(scores)) if scores.size else 0.0
    standardized = scores / spread if spread > 0 else scores
    return (standardized - (standardized.max() if scores.size else 0.0)) / temperature


def prefix_count(n: int, k: int) -> int:
    """Ordered prefixes of ``k - 1`` distinct items out of ``n``: what the exact enumeration visits."""
    return math.perm(n, max(min(k, n) - 1, 0))


def exact_marginals(logits: np.ndarray, k: int) -> Marginals:
    """P(item at position) for positions 1..k by enumerating every ordered prefix (level by level)."""
    w = np.exp(np.asarray(logits, dtype=np.float64))
    n = w.size
    k = min(k, n)
    probability = np.zeros((n, k))
    p = np.ones(1)
    taken = np.zeros((1, n), dtype=bool)
    for r in range(k):
        free = np.where(taken, 0.0, w[None, :])
        conditional = free / free.sum(axis=1, keepdims=True)
        probability[:, r] = p @ conditional
        if r == k - 1:
            break
        rows, items = np.nonzero(~taken)
        p = p[rows] * conditional[rows, items]
        taken = taken[rows].copy()
        taken[np.arange(rows.size), items] = True
    return Marginals(probability, 0.0, True)


def sampled_marginals(logits: np.ndarray, k: int, samples: int, rng: np.random.Generator) -> Marginals:
    """Rao-Blackwellized Monte Carlo marginals from ``samples`` PL slates (an exponential race).

    A slate is the order in which the items' exponential clocks ``E_i / w_i`` ring, which is
    Gumbel-top-k (``log w_i - log E_i``) without the two logarithms per draw, three times faster.
    For a sampled slate with remaining mass ``R_r`` before position r, every item not above r
    contributes ``w_i / R_r``; summed over slates that is ``w_i (Σ 1/R_r - Σ_{i above r} 1/R_r)``,
    so no (samples, k, n) array is built.
    """
    logits = np.asarray(logits, dtype=np.float64)
    w = np.exp(logits - logits.max())
    n = w.size
    k = min(k, n)
    with np.errstate(divide="ignore"):  # an item of weight 0 never rings: its clock is infinite
        keys = rng.standard_exponential(size=(samples, n))
        keys /= w
    top = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (samples, 1))
    chosen = np.take_along_axis(top, np.argsort(np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
    picked = w[chosen]
    total = w.sum()
    remaining = np.maximum(total - (np.cumsum(picked, axis=1) - picked), picked)
    inv, inv2 = 1.0 / remaining, 1.0 / remaining**2
    above, above2 = np.zeros((n, k)), np.zeros((n, k))
    for j in range(k - 1):
        np.add.at(above[:, j + 1 :], chosen[:, j], inv[:, j + 1 :])
        np.add.at(above2[:, j + 1 :], chosen[:, j], inv2[:, j + 1 :])
    mean = w[:, None] * (inv.sum(axis=0)[None, :] - above) / samples
    second = w[:, None] ** 2 * (inv2.sum(axis=0)[None, :] - above2) / samples
    variance = np.maximum(second - mean**2, 0.0) / max(samples - 1, 1)
    return Marginals(mean, float(np.sqrt(variance.max())) if variance.size else 0.0, False, samples)


def pl_marginals(logits: np.ndarray, k: int, samples: int, seed: int) -> Marginals:
    """Exact marginals while the prefixes number at most ``EXACT_PREFIXES``, else sampled (seeded)."""
    n = np.asarray(logits).size
    if prefix_count(n, k) <= EXACT_PREFIXES:
        return exact_marginals(logits, k)
    return sampled_marginals(logits, k, samples, np.random.default_rng(seed))


def _capped(ratio: np.ndarray, clip: float) -> np.ndarray:
    if clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    return np.minimum(ratio, clip)


def position_weights(
    target_marginal: npt.ArrayLike, logging_marginal: npt.ArrayLike, clip: float
) -> np.ndarray:
    """Per-position weights ``min(P_target(i at r) / P_logging(i at r), clip)``."""
    logging_marginal = np.asarray(logging_marginal, dtype=np.float64)
    if (logging_marginal <= 0).any():
        raise ValueError("logged propensities must be positive")
    return _capped(np.asarray(target_marginal, dtype=np.float64) / logging_marginal, clip)


def cascade_weights(
    slate: npt.ArrayLike, target_conditional: npt.ArrayLike, logging_conditional: npt.ArrayLike, clip: float
) -> np.ndarray:
    """Cascade weights: per slate (rows grouped by ``slate`` in rank order) the running product of
    the conditional ratios of ranks 1..r, capped at ``clip``."""
    logging_conditional = np.asarray(logging_conditional, dtype=np.float64)
    if (logging_conditional <= 0).any():
        raise ValueError("logged propensities must be positive")
    log_ratio = np.log(np.maximum(np.asarray(target_conditional, dtype=np.float64), 1e-300))
    log_ratio -= np.log(logging_conditional)
    slate = np.asarray(slate)
    if not slate.size:
        return np.empty(0)
    starts = np.r_[True, slate[1:] != slate[:-1]]
    running = np.cumsum(log_ratio)
    offset = np.maximum.accumulate(np.where(starts, np.arange(slate.size), 0))
    before = np.where(offset > 0, running[np.maximum(offset - 1, 0)], 0.0)
    return _capped(np.exp(np.minimum(running - before, 700.0)), clip)


def ips(weights: npt.ArrayLike, rewards: npt.ArrayLike, slates: int) -> float | None:
    """Σ w·r over the number of slates (None without slates)."""
    if slates <= 0:
        return None
    return float(np.sum(np.asarray(weights) * np.asarray(rewards, dtype=np.float64)) / slates)


def snips(weights: npt.ArrayLike, rewards: npt.ArrayLike, per_slate: float = 1.0) -> float | None:
    """Σ w·r / Σ w, times ``per_slate`` recommendations per slate (None when every weight is 0)."""
    weights = np.asarray(weights, dtype=np.float64)
    total = float(weights.sum())
    if total <= 0:
        return None
    return float(np.sum(weights * np.asarray(rewards, dtype=np.float64)) / total * per_slate)
