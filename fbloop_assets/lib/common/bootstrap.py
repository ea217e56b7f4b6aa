"""The bootstrap over units that fbloop's intervals share: resampled column totals.

A unit (a slate: what was served together) carries a row of sums, e.g. its clicks, conversions
and impressions, or each arm's Σ w·yield and Σ w. A resample draws the units with replacement;
its totals are the draw counts times those rows. Any ratio of totals (a yield, a lift) is then
computed from the resampled totals, all resamples at once.

Pure numpy; nothing here knows what the columns mean.
"""

from __future__ import annotations

import numpy as np

# Resamples are drawn in blocks of at most this many (resample, unit) cells, bounding memory.
BLOCK_CELLS = 4_000_000


def resampled_totals(sums: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` bootstrap resamples of the rows of ``sums`` (units x columns): their column totals.

    Returns a (samples x columns) array. Each resample draws as many units as there are, with
    replacement (``rng.integers``), so the same generator state gives the same resamples.
    """
    sums = np.asarray(sums, dtype=np.float64)
    n = sums.shape[0]
    if n == 0:
        return np.zeros((samples, sums.shape[1]))
    block = max(1, BLOCK_CELLS // n)
    totals = []
    for start in range(0, samples, block):
        size = min(block, samples - start)
        draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        totals.append(counts @ sums)
    return np.concatenate(totals)
