"""The drift guard: per-feature population stability of a dataset version against the previous one.

The PSI is corrected for the sampling noise two samples of these sizes show, and a feature is
graded only when its PSI exceeds what sampling alone reaches once in a thousand comparisons (see
`drift`). Pure: no files, no Dagster.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import DriftGuard
from fbloop_assets.lib.common.outcome import VERDICTS, GuardOutcome, Verdict, grade, worst
from fbloop_assets.lib.scoring.features import FEATURES

# Drift: a bin should expect at least this many values of the smaller sample, else fewer bins are
# used (the chi-square approximation behind the noise correction needs populated bins).
MIN_PER_BIN = 10
# Drift: a feature is graded only when its PSI exceeds this quantile of the PSI two samples of the
# same distribution show (see `drift`).
NOISE_QUANTILE = 0.999


def psi(previous: np.ndarray, current: np.ndarray, bins: int) -> tuple[float, int]:
    """Population stability index of ``current`` against ``previous``, and the bins it used.

    Bin edges are the ``previous`` quantiles at 1/bins, …, (bins-1)/bins, taken as observed
    values (``inverted_cdf``), duplicates dropped: tied or constant values share one bin instead
    of producing empty ones. Bins are right-closed, ``(-inf, e1], (e1, e2], …, (ek, inf)``, so the
    outer bins catch values beyond anything seen before. A sample with no value in a bin counts
    half a value there (share ``0.5 / n``), which keeps the logarithm finite without letting one
    empty bin dominate small samples. PSI = Σ (c_i - p_i) ln(c_i / p_i) over bins holding values
    of either sample. The bins used are those holding ``previous`` values.
    """
    probs = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(previous, probs, method="inverted_cdf"))
    counts_prev = np.bincount(np.searchsorted(edges, previous, side="left"), minlength=edges.size + 1)
    counts_cur = np.bincount(np.searchsorted(edges, current, side="left"), minlength=edges.size + 1)
    occupied = (counts_prev > 0) | (counts_cur > 0)
    p = np.where(counts_prev > 0, counts_prev, 0.5)[occupied] / previous.size
    c = np.where(counts_cur > 0, counts_cur, 0.5)[occupied] / current.size
    return float(np.sum((c - p) * np.log(c / p))), int((counts_prev > 0).sum())


def _chi2_quantile(q: float, df: int) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (within a few % for df >= 1)."""
    z = NormalDist().inv_cdf(q)
    return df * (1.0 - 2.0 / (9.0 * df) + z * math.sqrt(2.0 / (9.0 * df))) ** 3


def _finite(frame: pl.DataFrame, feature: str) -> np.ndarray:
    if feature not in frame.columns:
        return np.empty(0)
    values = frame[feature].cast(pl.Float64).drop_nulls().to_numpy()
    return values[np.isfinite(values)]


def _feature_drift(
    prev: np.ndarray, cur: np.ndarray, config: DriftGuard
) -> tuple[dict[str, Any], Verdict | None]:
    """One feature's drift statistics and verdict (None: not graded, see `drift`)."""
    if prev.size == 0 or cur.size == 0:
        return {"psi": None, "n_previous": int(prev.size), "n_current": int(cur.size)}, None
    if np.ptp(prev) == 0:  # constant before (a learned feature still at its default): no reference
        return {"psi": None, "constant_before": float(prev[0]), "n_current": int(cur.size)}, None
    bins = max(2, min(config.bins, min(prev.size, cur.size) // MIN_PER_BIN))
    value, used = psi(prev, cur, bins)
    scale = 1.0 / prev.size + 1.0 / cur.size
    noise = (used - 1) * scale
    significant = scale * _chi2_quantile(NOISE_QUANTILE, max(used - 1, 1))
    verdict = grade(value - noise, config.psi_warn, config.psi_fail) if value > significant else "pass"
    stats = {
        "psi": round(value, 4),
        "noise": round(noise, 4),
        "excess": round(value - noise, 4),
        "significant_above": round(significant, 4),
        "bins": used,
        "n_previous": int(prev.size),
        "n_current": int(cur.size),
    }
    return stats, verdict


def drift(current: pl.DataFrame, previous: pl.DataFrame | None, config: DriftGuard) -> GuardOutcome:
    """Per-feature drift of a dataset version against the previous one, calibrated to sample size.

    For each feature of `FEATURES` (nulls and non-finite values ignored) the PSI of the current
    values against the previous ones (`psi`), with at most ``bins`` bins and fewer when the smaller
    sample would expect under ``MIN_PER_BIN`` values per bin.

    Calibration. With bin shares p_i (previous, n_p values) and c_i (current, n_c values) drawn
    from the same distribution q, ln(c_i / p_i) ≈ (c_i - p_i) / q_i, so
    PSI ≈ Σ (c_i - p_i)² / q_i, and c_i - p_i has variance q_i (1 - q_i) (1/n_p + 1/n_c). Hence

        PSI ≈ (1/n_p + 1/n_c) · χ²(k - 1),   E[PSI] ≈ noise = (k - 1) · (1/n_p + 1/n_c)

    for k bins used. Thirty values against thirty in 10 bins give a PSI of about 0.6 with no
    change at all, far above the usual 0.25 alarm. The thresholds therefore apply to the
    *excess* PSI - noise: WARN above ``psi_warn``, FAIL above ``psi_fail``.

    The expectation alone still lets small samples through often: χ²'s spread is about as large
    as its mean, so with 30 against 30 values the excess of some feature passes 0.25 in about a
    third of comparisons of identical distributions. A feature is therefore graded only when its
    PSI also exceeds (1/n_p + 1/n_c) · χ²_{k-1}(``NOISE_QUANTILE``), the level sampling alone
    reaches once in a thousand comparisons. From a few hundred values per side this bound lies
    below ``noise + psi_warn`` and the excess alone decides; it matters only for small samples.

    A feature that was constant in the previous version (the creator's past conversion rate before
    any conversion arrived) has no distribution to compare with and is listed, not graded. The
    worst feature decides the verdict. PASS without a previous version or with an empty side.
    """
    threshold = {
        "psi_warn": config.psi_warn,
        "psi_fail": config.psi_fail,
        "applies_to": "psi - noise, noise = (bins - 1) * (1/n_previous + 1/n_current)",
        "noise_quantile": NOISE_QUANTILE,
        "max_bins": config.bins,
    }
    if previous is None or previous.height == 0 or current.height == 0:
        return GuardOutcome("drift", "pass", {}, threshold, "no previous version to compare")
    per_feature: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, Verdict] = {}
    for feature in FEATURES:
        stats, verdict = _feature_drift(_finite(previous, feature), _finite(current, feature), config)
        per_feature[feature] = stats
        if verdict is not None:
            verdicts[feature] = verdict
    value_out: dict[str, Any] = {"features": per_feature, "worst": None}
    if not verdicts:
        return GuardOutcome("drift", "pass", value_out, threshold, "no feature has values on both sides")
    name = max(verdicts, key=lambda f: (VERDICTS.index(verdicts[f]), per_feature[f]["excess"]))
    verdict, stats = worst(list(verdicts.values())), per_feature[name]
    value_out["worst"] = name
    text = (
        f"{name}: PSI {stats['psi']:.3f} = noise {stats['noise']:.3f} {stats['excess']:+.3f} "
        f"({stats['n_previous']:,} vs {stats['n_current']:,} values, {stats['bins']} bins)"
    )
    if verdict == "pass":
        within = "" if stats["psi"] > stats["significant_above"] else ", within sampling noise"
        detail = f"no drift; largest {text}{within} (warn above noise + {config.psi_warn})"
    else:
        limit = config.psi_fail if verdict == "fail" else config.psi_warn
        detail = f"{'drift' if verdict == 'fail' else 'moderate drift'} in {text}: beyond noise + {limit}"
    return GuardOutcome("drift", verdict, value_out, threshold, detail)
