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

from datetime import date, timedelta
from typing import Any

import polars as pl

from fbloop_assets.lib.common.config import CompletenessGuard, EvidenceGuard
from fbloop_assets.lib.common.outcome import GuardOutcome
from fbloop_assets.lib.common.privacy import RAW_PERSONAL_COLUMNS, personal_data_findings
from fbloop_assets.lib.dataset.drift import drift, psi

__all__ = ["completeness", "drift", "evidence", "privacy", "psi"]

UNKNOWN_SEGMENT = "(unknown)"
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


def _is_exact_age(column: str) -> bool:
    name = column.lower()
    return name in ("age", "dob") or name.endswith("_age") or "birth" in name


def privacy(frame: pl.DataFrame, mode: str, where: str) -> GuardOutcome:
    """No raw subject id or exact age in ``frame`` (a dataset's examples or a training export).

    FAIL on a column of `privacy.RAW_PERSONAL_COLUMNS` or `RAW_ID_COLUMNS`, a column that looks like
    an exact age or birth date (``age``, ``*_age``, ``*birth*``, ``dob``; ``age_bucket`` is fine),
    or any value finding of `privacy.personal_data_findings` in the other columns (unkeyed subject
    keys, unbucketed ages, and in every text column URLs, e-mail addresses and free text).
    In ``identifiable`` mode (contractual consent) raw subject ids are allowed: raw id columns and
    subject keys (which are the raw ids in that mode) only WARN. ``where`` names the frame.
    """
    columns = frame.columns
    id_columns = [c for c in columns if c.lower() in RAW_ID_COLUMNS]
    age_columns = [c for c in columns if _is_exact_age(c) and c not in id_columns]
    other_raw = [c for c in RAW_PERSONAL_COLUMNS if c in columns and c not in id_columns + age_columns]
    findings = [f"raw column {c!r} present" for c in other_raw]
    findings += [f"exact age column {c!r} present" for c in age_columns]
    # Values in every column: unkeyed subject keys, unbucketed ages, URLs, e-mails, free text.
    values = frame.drop(id_columns + age_columns + other_raw)
    findings += [
        f for f in personal_data_findings(values, mode) if not f.startswith(("raw column", "exact age"))
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
