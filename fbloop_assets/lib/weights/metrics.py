"""Offline ranking and exposure metrics, as plain functions of arrays (off-policy ones: `estimators`).

- `ndcg_at_k` follows trec_eval's ``ndcg_cut.k`` with linear gain: DCG sums ``rel_i / log2(i + 1)``
  over the first k ranked items; the ideal DCG ranks *all* judged items of the query (not only
  the retrieved ones) by relevance; only positive gains count. A query without any relevant item
  has no NDCG (None); trec_eval scores it 0 (`evaluation.trec_ranking` averages 0 and counts it).
- `precision_at_k` follows trec_eval's ``P_k``: relevant items in the first k, divided by k even
  when fewer than k were ranked.
- `gini` of exposure counts over the catalog (0: every creator shown equally; towards 1: a few
  creators get all exposure) and `coverage` (share of the catalog shown at all).

Nothing here knows about campaigns, weights or Dagster.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _dcg(gains: np.ndarray, k: int) -> float:
    top = np.maximum(gains[:k], 0.0)  # trec_eval counts only positive gains
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
