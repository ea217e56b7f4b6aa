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

import polars as pl


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Alpha for nominal values; each unit is the values given to one item (None: not rated).

    None when no unit has two values or when every pairable value is the same (no variation to
    agree on: alpha is undefined there).
    """
    coincidences: dict[tuple[Hashable, Hashable], float] = {}
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, count_c in counts.items():
            for k, count_k in counts.items():
                pairs = count_c * (count_k - 1) if c == k else count_c * count_k
                if pairs:
                    coincidences[(c, k)] = coincidences.get((c, k), 0.0) + pairs / (m - 1)
    n_c: dict[Hashable, float] = {}
    for (c, _), v in coincidences.items():
        n_c[c] = n_c.get(c, 0.0) + v
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(v for (c, k), v in coincidences.items() if c != k)
    expected = (n * n - sum(v * v for v in n_c.values())) / (n - 1)
    if expected == 0:
        return None
    return 1.0 - observed / expected


def label_agreement(labels: pl.DataFrame) -> dict[str, Any]:
    """Agreement of the labels in ``labels`` (recommendation_id, reviewer_id, label_value).

    Each reviewer counts once per item (their latest label wins when the frame is in time order).
    Returns alpha, the share of pairs that agree, and how many items and pairs it rests on.
    """
    per_item = (
        labels.unique(["recommendation_id", "reviewer_id"], keep="last", maintain_order=True)
        .group_by("recommendation_id")
        .agg(pl.col("label_value"))
        .filter(pl.col("label_value").list.len() >= 2)
    )
    units = per_item["label_value"].to_list()
    pairs = agreeing = 0
    for unit in units:
        counts = Counter(unit)
        m = len(unit)
        pairs += m * (m - 1) // 2
        agreeing += sum(n * (n - 1) // 2 for n in counts.values())
    return {
        "items_multiply_labeled": len(units),
        "pairs": pairs,
        "pairwise_agreement": agreeing / pairs if pairs else None,
        "krippendorff_alpha": krippendorff_alpha_nominal(units),
    }
