"""Guards on a FeedbackDataset version: evidence per segment, completeness, drift, privacy.

- `evidence`: enough records, overall and per campaign segment (objective), and enough held-out
  labeled records for the offline metrics to stand on.
- `completeness`: every input partition present, every attribution window closed, few late outcomes.
- `drift`: per feature, the population stability index against the previous version, corrected
  for the sampling noise two samples of these sizes show (see `drift`).
- `privacy`: no raw subject id or exact age in a dataset's examples or a training export.

Each returns a `GuardOutcome`; none reads files or knows about Dagster.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import CompletenessGuard, DriftGuard, EvidenceGuard
from fbloop_assets.lib.common.outcome import VERDICTS, GuardOutcome, Verdict, grade, worst
from fbloop_assets.lib.common.privacy import RAW_PERSONAL_COLUMNS, personal_data_findings
from fbloop_assets.lib.scoring.features import FEATURES

UNKNOWN_SEGMENT = "(unknown)"
# Drift: a bin should expect at least this many values of the smaller sample, else fewer bins are
# used (the chi-square approximation behind the noise correction needs populated bins).
MIN_PER_BIN = 10
# Drift: a feature is graded only when its PSI exceeds this quantile of the PSI two samples of the
# same distribution show (see `drift`).
NOISE_QUANTILE = 0.999
# Columns that hold a raw identifier of an audience member (besides RAW_PERSONAL_COLUMNS).
RAW_ID_COLUMNS = ("subject_id", "user_id", "member_id", "email", "phone", "ip_address", "device_id")


def evidence(examples: pl.DataFrame, segments: dict[str, str], config: EvidenceGuard) -> GuardOutcome:
    """Enough records to judge a candidate, overall and per campaign segment.

    ``segments`` maps campaign_id to its segment (the campaign's objective); campaigns it lacks
    fall into ``(unknown)``. Labeled held-out records are rows with ``holdout`` and
    ``n_labels > 0``. FAIL below ``min_records`` records or ``min_labeled`` labeled held-out
    records; WARN when a segment present in the dataset has fewer than ``min_segment_records``
    (segments without any record are listed, not judged: their campaigns served nothing in the
    window, so the candidate is not judged on their traffic); WARN on an empty dataset (no
    candidate is fitted from it).
    """
    threshold = {
        "records": config.min_records,
        "labeled_holdout": config.min_labeled,
        "segment_records": config.min_segment_records,
    }
    if examples.height == 0:
        value = {"records": 0, "labeled_holdout": 0, "segments": {}}
        return GuardOutcome("evidence", "warn", value, threshold, "nothing to learn from yet: no candidate")
    per_segment = (
        examples.select(
            pl.col("campaign_id")
            .replace_strict(segments, default=UNKNOWN_SEGMENT, return_dtype=pl.String)
            .alias("segment"),
            (pl.col("holdout").fill_null(False) & (pl.col("n_labels").fill_null(0) > 0)).alias("labeled"),
        )
        .group_by("segment")
        .agg(pl.len().alias("records"), pl.col("labeled").sum().alias("labeled_holdout"))
        .sort("segment")
    )
    by_segment = {
        s: {"records": int(r), "labeled_holdout": int(lab)} for s, r, lab in per_segment.iter_rows()
    }
    records, labeled = examples.height, sum(v["labeled_holdout"] for v in by_segment.values())
    value = {
        "records": records,
        "labeled_holdout": labeled,
        "segments": by_segment,
        "segments_without_records": sorted(set(segments.values()) - set(by_segment)),
    }
    totals = (
        f"{records:,} records (min {config.min_records:,}), "
        f"{labeled:,} labeled held-out (min {config.min_labeled:,})"
    )
    if records < config.min_records or labeled < config.min_labeled:
        return GuardOutcome("evidence", "fail", value, threshold, f"too little evidence: {totals}")
    thin = {s: v["records"] for s, v in by_segment.items() if v["records"] < config.min_segment_records}
    if thin:
        names = ", ".join(f"{s} ({n:,})" for s, n in sorted(thin.items(), key=lambda kv: kv[1]))
        detail = f"thin segments (records < {config.min_segment_records:,}): {names}; {totals}"
        return GuardOutcome("evidence", "warn", value, threshold, detail)
    return GuardOutcome(
        "evidence", "pass", value, threshold, f"{totals}; {len(by_segment)} segments, each enough"
    )


def _days_text(days: list[str], limit: int = 3) -> str:
    shown = ", ".join(days[:limit])
    return shown + (f" (+{len(days) - limit} more)" if len(days) > limit else "")


def completeness(
    day: date, manifest: dict[str, Any], closing_days: int, config: CompletenessGuard
) -> GuardOutcome:
    """Every input partition present and every attribution window closed; few late outcomes.

    FAIL when the manifest names missing partitions (``partitions_missing``: asset -> ISO days) or
    a serving day whose attribution windows had not closed by the end of ``day`` (serving day +
    ``closing_days`` > ``day``). WARN when more than ``late_share_warn`` of the window's outcomes
    (``outcomes_total``) arrived after their window had closed (``outcomes_late``; missing
    counts are 0).
    """
    missing = {a: sorted(d) for a, d in sorted((manifest.get("partitions_missing") or {}).items()) if d}
    open_days = sorted(
        d
        for d in manifest.get("serving_days") or []
        if date.fromisoformat(d) + timedelta(days=closing_days) > day
    )
    late, total = int(manifest.get("outcomes_late") or 0), int(manifest.get("outcomes_total") or 0)
    late_share = late / total if total > 0 else 0.0
    value = {
        "partitions_missing": missing,
        "open_serving_days": open_days,
        "outcomes_late": late,
        "outcomes_total": total,
        "late_share": round(late_share, 4),
    }
    threshold = {"partitions_missing": 0, "open_serving_days": 0, "late_share": config.late_share_warn}
    late_text = f"{late:,} of {total:,} outcomes ({late_share:.1%}) arrived after their attribution window"
    causes = [f"{asset} missing {_days_text(days)}" for asset, days in missing.items()]
    if open_days:
        causes.append(
            f"attribution windows still open on {day.isoformat()} for serving days {_days_text(open_days)}"
            f" (they close {closing_days} days after serving)"
        )
    if causes:
        return GuardOutcome("completeness", "fail", value, threshold, "; ".join(causes))
    if late_share > config.late_share_warn:
        detail = f"outcomes arriving late: {late_text} (warn above {config.late_share_warn:.1%})"
        return GuardOutcome("completeness", "warn", value, threshold, detail)
    return GuardOutcome(
        "completeness", "pass", value, threshold, f"every partition present, windows closed; {late_text}"
    )


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
        prev, cur = _finite(previous, feature), _finite(current, feature)
        if prev.size == 0 or cur.size == 0:
            per_feature[feature] = {"psi": None, "n_previous": int(prev.size), "n_current": int(cur.size)}
            continue
        if np.ptp(prev) == 0:  # constant before (a learned feature still at its default): no reference
            per_feature[feature] = {
                "psi": None,
                "constant_before": float(prev[0]),
                "n_current": int(cur.size),
            }
            continue
        bins = max(2, min(config.bins, min(prev.size, cur.size) // MIN_PER_BIN))
        value, used = psi(prev, cur, bins)
        scale = 1.0 / prev.size + 1.0 / cur.size
        noise = (used - 1) * scale
        significant = scale * _chi2_quantile(NOISE_QUANTILE, max(used - 1, 1))
        verdicts[feature] = (
            grade(value - noise, config.psi_warn, config.psi_fail) if value > significant else "pass"
        )
        per_feature[feature] = {
            "psi": round(value, 4),
            "noise": round(noise, 4),
            "excess": round(value - noise, 4),
            "significant_above": round(significant, 4),
            "bins": used,
            "n_previous": int(prev.size),
            "n_current": int(cur.size),
        }
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


def _is_exact_age(column: str) -> bool:
    name = column.lower()
    return name in ("age", "dob") or name.endswith("_age") or "birth" in name


def privacy(frame: pl.DataFrame, mode: str, where: str) -> GuardOutcome:
    """No raw subject id or exact age in ``frame`` (a dataset's examples or a training export).

    FAIL on a column of `privacy.RAW_PERSONAL_COLUMNS` or `RAW_ID_COLUMNS`, a column that looks like
    an exact age or birth date (``age``, ``*_age``, ``*birth*``, ``dob``; ``age_bucket`` is fine),
    or any value finding of `privacy.personal_data_findings` on ``subject_key`` / ``age_bucket``.
    In ``identifiable`` mode (contractual consent) raw subject ids are allowed: raw id columns and
    subject keys (which are the raw ids in that mode) only WARN. ``where`` names the frame.
    """
    columns = frame.columns
    id_columns = [c for c in columns if c.lower() in RAW_ID_COLUMNS]
    age_columns = [c for c in columns if _is_exact_age(c) and c not in id_columns]
    other_raw = [c for c in RAW_PERSONAL_COLUMNS if c in columns and c not in id_columns + age_columns]
    findings = [f"raw column {c!r} present" for c in other_raw]
    findings += [f"exact age column {c!r} present" for c in age_columns]
    value_columns = [c for c in ("subject_key", "age_bucket") if c in columns]
    if value_columns:
        findings += [
            f
            for f in personal_data_findings(frame.select(value_columns), mode)
            if not f.startswith("raw column")
        ]
    reported: list[str] = []
    if mode == "identifiable":
        reported = [f"raw id column {c!r}" for c in id_columns]
        if "subject_key" in columns and (keys := frame["subject_key"].null_count()) < frame.height:
            reported.append(f"{frame.height - keys:,} raw subject keys")
    else:
        findings = [f"raw id column {c!r} present" for c in id_columns] + findings
    value = {"where": where, "mode": mode, "findings": findings, "reported": reported}
    threshold = {"findings": 0, "raw_ids": "reported (WARN) in identifiable mode only"}
    if findings:
        return GuardOutcome(
            "privacy", "fail", value, threshold, f"{where} holds personal data: {'; '.join(findings)}"
        )
    if reported:
        detail = (
            f"{where} holds raw subject ids (identifiable mode, contractual consent): {'; '.join(reported)}"
        )
        return GuardOutcome("privacy", "warn", value, threshold, detail)
    return GuardOutcome(
        "privacy", "pass", value, threshold, f"{where} holds no raw subject id or exact age ({mode} mode)"
    )
