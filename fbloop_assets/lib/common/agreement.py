"""Inter-reviewer agreement: Krippendorff's alpha (nominal) over items labeled more than once.

Alpha compares the disagreement observed between the values given to the same item with the
disagreement expected if values were paired at random (Krippendorff 2011, "Computing
Krippendorff's Alpha-Reliability"): ``alpha = 1 - D_o / D_e``. 1 is perfect agreement, 0 is
chance, below 0 is systematic disagreement. It handles any number of reviewers per item and
reviewers who did not see every item; items with a single value carry no pairing information and
are left out. Unlike Cohen's kappa it does not need the same two reviewers on every item, which
is how the review queue routes items (to any two reviewers).

Pure functions; nothing here knows about the store or Dagster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.bootstrap import resampled_totals


def _coincidences(units: Iterable[Sequence[Hashable | None]]) -> tuple[np.ndarray, int]:
    """Per pairable unit, its row of the coincidence matrix (values x values, flattened); the value count.

    A unit with ``m`` values adds ``count_c * count_k / (m - 1)`` to cell (c, k) (``count_c *
    (count_c - 1) / (m - 1)`` on the diagonal): every ordered pair of its values, weighted so
    that each unit contributes ``m`` in all.
    """
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [values for values in pairable if len(values) >= 2]
    index: dict[Hashable, int] = {}
    for values in pairable:
        for v in values:
            index.setdefault(v, len(index))
    width = len(index)
    rows = np.zeros((len(pairable), width * width))
    for row, values in enumerate(pairable):
        m = len(values)
        counts = Counter(index[v] for v in values)
        for c, count_c in counts.items():
            for k, count_k in counts.items():
                pairs = count_c * (count_k - 1) if c == k else count_c * count_k
                rows[row, c * width + k] = pairs / (m - 1)
    return rows, width


def _alpha_of_totals(totals: np.ndarray, width: int) -> np.ndarray:
    """Alpha of each row of summed coincidence matrices (NaN where it is undefined)."""
    matrices = totals.reshape(-1, width, width)
    n_c = matrices.sum(axis=2)
    n = n_c.sum(axis=1)
    observed = n - np.trace(matrices, axis1=1, axis2=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (n * n - (n_c * n_c).sum(axis=1)) / (n - 1)
        alpha = 1.0 - observed / expected
    return np.where((n > 1) & (expected > 0), alpha, np.nan)


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Alpha for nominal values; each unit is the values given to one item (None: not rated).

    None when no unit has two values or when every pairable value is the same (no variation to
    agree on: alpha is undefined there).
    """
    rows, width = _coincidences(units)
    if not rows.shape[0]:
        return None
    alpha = float(_alpha_of_totals(rows.sum(axis=0, keepdims=True), width)[0])
    return None if np.isnan(alpha) else alpha


def alpha_upper_bound(
    units: Iterable[Sequence[Hashable | None]], samples: int, confidence: float, seed: int = 0
) -> float | None:
    """A one-sided upper bound on alpha at ``confidence``: the percentile bootstrap over items.

    Items are the unit of resampling (Krippendorff's own bootstrap resamples pairable values;
    items keep the pairs of one item together, as the review queue produced them). Alpha on a
    few dozen items swings by ±0.3 from one day to the next, so a guard that blocks on low
    agreement should block only when even this bound is low. None where alpha is undefined.
    """
    rows, width = _coincidences(units)
    if not rows.shape[0]:
        return None
    totals = resampled_totals(rows, samples, np.random.default_rng(seed))
    alphas = _alpha_of_totals(totals, width)
    alphas = alphas[np.isfinite(alphas)]
    return float(np.quantile(alphas, confidence)) if alphas.size else None


def label_agreement(labels: pl.DataFrame, samples: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Agreement of the labels in ``labels`` (recommendation_id, reviewer_id, label_value).

    Each reviewer counts once per item (their latest label wins when the frame is in time order).
    Returns alpha, the share of pairs that agree, and how many items and pairs it rests on; with
    ``samples`` bootstrap resamples also ``krippendorff_alpha_upper`` (`alpha_upper_bound`).
    """
    per_item = (
        labels.unique(["recommendation_id", "reviewer_id"], keep="last", maintain_order=True)
        .group_by("recommendation_id")
        .agg(pl.col("label_value"))
        .filter(pl.col("label_value").list.len() >= 2)
        .sort("recommendation_id")  # the bootstrap's draws are by position: a fixed order
    )
    units = per_item["label_value"].to_list()
    pairs = agreeing = 0
    for unit in units:
        counts = Counter(unit)
        m = len(unit)
        pairs += m * (m - 1) // 2
        agreeing += sum(n * (n - 1) // 2 for n in counts.values())
    out: dict[str, Any] = {
        "items_multiply_labeled": len(units),
        "pairs": pairs,
        "pairwise_agreement": agreeing / pairs if pairs else None,
        "krippendorff_alpha": krippendorff_alpha_nominal(units),
    }
    if samples:
        out["krippendorff_alpha_upper"] = alpha_upper_bound(units, samples, confidence)
    return out
