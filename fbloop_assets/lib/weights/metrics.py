"""Offline ranking and off-policy metrics, as plain functions of arrays.

- `ndcg_at_k` follows trec_eval's ``ndcg_cut.k`` with linear gain: DCG sums ``rel_i / log2(i + 1)``
  over the first k ranked items; the ideal DCG ranks *all* judged items of the query (not only
  the retrieved ones) by relevance. A query without any relevant item has no NDCG (None), so
  callers leave it out of averages and count it.
- `precision_at_k` follows trec_eval's ``P_k``: relevant items in the first k, divided by k even
  when fewer than k were ranked.
- `ips` and `snips` estimate the mean reward per logged decision of a target policy from logs of
  a behaviour policy, with importance weights ``target / logged`` clipped at ``clip`` to bound
  their variance (clipping trades a little bias for much less variance).
- `gini` of exposure counts over the catalog (0: every creator shown equally; towards 1: a few
  creators get all exposure) and `coverage` (share of the catalog shown at all).

Nothing here knows about campaigns, weights or Dagster.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _dcg(gains: np.ndarray, k: int) -> float:
    top = gains[:k]
    return float(np.sum(top / np.log2(np.arange(2, top.size + 2))))


def ndcg_at_k(ranked: npt.ArrayLike, judged: npt.ArrayLike, k: int = 5) -> float | None:
    """NDCG@k of one query: ``ranked`` relevances in ranked order, ``judged`` all its relevances."""
    ideal = _dcg(np.sort(np.asarray(judged, dtype=np.float64))[::-1], k)
    if ideal <= 0:
        return None
    return _dcg(np.asarray(ranked, dtype=np.float64), k) / ideal


def precision_at_k(ranked: npt.ArrayLike, k: int = 5) -> float:
    """Share of the first ``k`` ranked items that are relevant (relevance > 0), over k."""
    top = np.asarray(ranked, dtype=np.float64)[:k]
    return float(np.sum(top > 0)) / k


def importance_weights(target: np.ndarray, logged: np.ndarray, clip: float) -> np.ndarray:
    """``min(target / logged, clip)``; logged propensities must be positive."""
    logged = np.asarray(logged, dtype=np.float64)
    if (logged <= 0).any():
        raise ValueError("logged propensities must be positive")
    if clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    return np.minimum(np.asarray(target, dtype=np.float64) / logged, clip)


def ips(rewards: np.ndarray, target: np.ndarray, logged: np.ndarray, clip: float = 10.0) -> float:
    """Inverse propensity scoring: mean of ``w_i * r_i`` over the logged decisions."""
    w = importance_weights(target, logged, clip)
    return float(np.mean(w * np.asarray(rewards, dtype=np.float64))) if w.size else float("nan")


def snips(rewards: np.ndarray, target: np.ndarray, logged: np.ndarray, clip: float = 10.0) -> float:
    """Self-normalized IPS: ``sum(w_i * r_i) / sum(w_i)``; NaN when every weight is zero."""
    w = importance_weights(target, logged, clip)
    total = float(np.sum(w))
    return float(np.sum(w * np.asarray(rewards, dtype=np.float64))) / total if total > 0 else float("nan")


def gini(exposures: npt.ArrayLike) -> float:
    """Gini coefficient of exposure counts (include the zeros of creators never shown)."""
    x = np.sort(np.asarray(exposures, dtype=np.float64))
    n, total = x.size, x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * np.sum(ranks * x)) / (n * total) - (n + 1.0) / n)


def coverage(shown: list[str], catalog_size: int) -> float:
    """Share of the catalog that was shown at least once."""
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    return len(set(shown)) / catalog_size
