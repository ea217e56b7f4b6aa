"""Stochastic serving: Plackett-Luce slates over softmax scores, with the propensity of every rank.

Off-policy evaluation needs to know how likely the serving policy was to show what it showed.
A Plackett-Luce policy draws a slate rank by rank: at rank r it picks creator i among those not
yet placed with probability ``exp(s_i / T) / Σ_remaining exp(s_j / T)``. That conditional
probability is the logged ``propensity``; the probability of the whole slate is the product of
a slate's propensities. Sampling uses the Gumbel-top-k trick (sorting ``s / T + Gumbel noise``
draws exactly this distribution), which vectorizes over many requests.

Scores are first divided by their standard deviation over the pool (`standardized`), so the
temperature alone sets how much serving explores, whatever the scale of the weights: a
candidate that changes the order of creators does not also silently change how greedy serving is.

This module does not compute scores (see `features`) and does not log anything.
"""

from __future__ import annotations

import zlib

import numpy as np


def standardized(scores: np.ndarray) -> np.ndarray:
    """Scores over their standard deviation in the pool (unchanged when they are all equal)."""
    spread = float(np.std(scores)) if scores.size else 0.0
    return scores / spread if spread > 0 else scores


def plackett_luce_slates(
    scores: np.ndarray, n_requests: int, k: int, temperature: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_requests`` slates of ``k`` distinct items from a pool with ``scores``.

    Returns ``(chosen, propensity)``, both shaped ``(n_requests, k)``: indices into ``scores`` in
    rank order, and the conditional probability of each pick given the ranks above it.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    pool = scores.shape[0]
    k = min(k, pool)
    if n_requests == 0 or k == 0:
        return np.empty((n_requests, k), dtype=np.int64), np.empty((n_requests, k))
    logits = (scores - scores.max()) / temperature
    keys = logits[None, :] + rng.gumbel(size=(n_requests, pool))
    top = (
        np.argpartition(-keys, k - 1, axis=1)[:, :k]
        if k < pool
        else np.tile(np.arange(pool), (n_requests, 1))
    )
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
    chosen = np.take_along_axis(top, order, axis=1)
    return chosen, slate_propensities(logits, chosen)


def slate_propensities(logits: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Plackett-Luce conditional probability of each rank of each slate in ``chosen``."""
    weights = np.exp(logits)
    total = weights.sum()
    picked = weights[chosen]
    placed_before = np.cumsum(picked, axis=1) - picked
    # Floating-point cancellation can leave the remaining mass a hair below the picked weight.
    remaining = np.maximum(total - placed_before, picked)
    return np.clip(picked / remaining, np.finfo(np.float64).tiny, 1.0)


def canary_arm(request_ids: list[str], share: float) -> np.ndarray:
    """Whether each request is served by the canary: a stable hash of its id, salted apart from
    the evaluation holdout (which hashes the bare id)."""
    threshold = round(share * 10_000)
    return np.array(
        [zlib.crc32(f"canary/{r}".encode()) % 10_000 < threshold for r in request_ids], dtype=bool
    )
