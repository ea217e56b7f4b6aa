"""Import labels from files into the label store: Label Studio JSON exports and CSV.

**Label Studio** (``--format label-studio``): the JSON export, a list of tasks. Each task's
``data.recommendation_id`` names the recommendation; each of its ``annotations`` becomes one label:

- the value: the first ``choices`` result, ``Useful`` / ``Not useful`` (any case; spaces, hyphens
  or underscores): ``useful`` / ``not_useful``;
- the confidence: a ``number`` result in [0, 1], or a ``rating`` result of 1-5 (divided by 5);
  1.0 when the annotation has neither;
- a ``textarea`` result becomes the comment;
- the reviewer: ``label-studio:<completed_by>`` (the user id, never the e-mail);
- the time: ``updated_at``, else ``created_at`` (RFC 3339 with an offset);
- the label id: ``ls-<task id>-<annotation id>``, so importing the same export again adds nothing.

Annotations with ``was_cancelled: true`` (skipped tasks) are counted, not imported.

**CSV** (``--format csv``): the columns of the ``labels`` landing contract (label_id,
reviewer_id, recommendation_id, label_value, confidence, labeled_at, comment); the label id makes
re-imports idempotent.

Rows that cannot be imported (unknown recommendation, missing or malformed values, a label id seen
twice in the file) are quarantined in the store with a reason code of the landing contract and a
one-line reason; the daily run reports them in `quarantine` on the day they were imported.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fbloop_assets.lib.common.privacy import REDACTED
from fbloop_assets.lib.ingest.day import coerce
from fbloop_assets.lib.ingest.landing import COLUMNS, LABEL_VALUES, Reason
from fbloop_assets.lib.ingest.read import UnreadableFile, read_landing
from fbloop_assets.lib.labeling.events import MAX_COMMENT, MAX_ID, iso
from fbloop_assets.lib.labeling.store import LabelStore

FORMATS = ("label-studio", "csv")


class ImportFileError(ValueError):
    """The file cannot be read as the format at all (nothing is imported)."""


@dataclass
class ImportResult:
    file: str
    format: str
    read: int = 0
    imported: int = 0
    already_imported: int = 0
    cancelled: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Candidate:
    key: str  # the row or annotation within the file, for quarantine
    row: int | None
    record: dict[str, Any]
    label: dict[str, Any] | None = None
    reason: str | None = None


def _norm_choice(text: object) -> str | None:
    value = str(text).strip().lower().replace("-", "_").replace(" ", "_")
    return value if value in LABEL_VALUES else None


def _timestamp(text: object) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return iso(moment) if moment.tzinfo is not None else None


def _annotation(task: dict[str, Any], ann: dict[str, Any], row: int) -> _Candidate:
    task_id, ann_id = task.get("id"), ann.get("id")
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    rec = data.get("recommendation_id") if data else None
    completed = ann.get("completed_by")
    user = completed.get("id") if isinstance(completed, dict) else completed
    record = {"task": task_id, "annotation": ann_id, "recommendation_id": rec, "completed_by": user}
    cand = _Candidate(key=f"task {task_id} annotation {ann_id}", row=row, record=record)
    if task_id is None or ann_id is None:
        cand.reason = f"{Reason.MISSING_FIELD}: task id or annotation id is empty"
        return cand
    value = confidence = comment = None
    for result in ann.get("result") or []:
        if not isinstance(result, dict):
            continue
        kind, val = result.get("type"), result.get("value") or {}
        if kind == "choices" and value is None:
            choices = val.get("choices") or []
            value = _norm_choice(choices[0]) if choices else None
            if value is None:
                cand.reason = (
                    f"{Reason.INVALID_VALUE}: choice {str(choices)[:60]!r} is not useful / not useful"
                )
                return cand
        elif kind == "number" and confidence is None:
            confidence = val.get("number")
        elif kind == "rating" and confidence is None:
            rating = val.get("rating")
            confidence = rating / 5 if isinstance(rating, int | float) else rating
        elif kind == "textarea":
            texts = val.get("text") or []
            comment = " ".join(str(t) for t in texts)[:MAX_COMMENT] or None
    labeled_at = _timestamp(ann.get("updated_at") or ann.get("created_at"))
    confidence = 1.0 if confidence is None else confidence
    record |= {"label_value": value, "confidence": confidence, "labeled_at": labeled_at}
    if not isinstance(rec, str) or not rec.strip():
        cand.reason = f"{Reason.MISSING_FIELD}: data.recommendation_id is empty"
    elif len(rec) > MAX_ID:
        cand.reason = f"{Reason.INVALID_VALUE}: recommendation_id is longer than {MAX_ID} characters"
    elif value is None:
        cand.reason = f"{Reason.MISSING_FIELD}: no useful / not useful choice in the annotation"
    elif not isinstance(confidence, int | float) or not math.isfinite(confidence) or not 0 <= confidence <= 1:
        cand.reason = f"{Reason.INVALID_VALUE}: confidence={str(confidence)[:20]!r} is not between 0 and 1"
    elif labeled_at is None:
        cand.reason = f"{Reason.MALFORMED_VALUE}: updated_at/created_at is not a timestamp with an offset"
    elif user is None:
        cand.reason = f"{Reason.MISSING_FIELD}: completed_by is empty"
    else:
        label_id = f"ls-{task_id}-{ann_id}"
        cand.label = {
            "event_id": label_id,
            "kind": "label",
            "label_id": label_id,
            "reviewer_id": f"label-studio:{user}",
            "recommendation_id": rec.strip(),
            "label_value": value,
            "confidence": float(confidence),
            "comment": comment,
            "origin": "import:label-studio",
            "labeled_at": labeled_at,
        }
    return cand


def _label_studio(path: Path, result: ImportResult) -> list[_Candidate]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFileError(f"{path}: not a Label Studio JSON export ({exc})") from exc
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise ImportFileError(f"{path}: a Label Studio JSON export is a list of tasks")
    out = []
    for i, task in enumerate(tasks, start=1):
        for ann in task.get("annotations") or []:
            if not isinstance(ann, dict):
                continue
            result.read += 1
            if ann.get("was_cancelled"):
                result.cancelled += 1
                continue
            out.append(_annotation(task, ann, i))
    return out


def _csv(path: Path, result: ImportResult) -> list[_Candidate]:
    if path.suffix not in (".csv", ".jsonl", ".parquet"):
        raise ImportFileError(f"{path}: a CSV import is a .csv file (or a .jsonl/.parquet landing file)")
    try:
        landed = read_landing(path, "labels")
    except UnreadableFile as exc:
        raise ImportFileError(f"{path}: {exc.detail}") from exc
    raw, rows = next(landed.batches(max(landed.height, 1)))  # every good row, with its position
    positions = rows.to_list()
    missing = [c.name for c in COLUMNS["labels"] if c.required and c.name not in raw.columns]
    if missing:
        raise ImportFileError(f"{path}: missing column(s) {', '.join(missing)}")
    # a line no reader can split is quarantined alone, with its line number; its neighbours import
    out = [
        _Candidate(
            key=f"line {bad.line}",
            row=bad.row,
            record={"line": bad.line},
            reason=f"{bad.code}: line {bad.line}: {bad.detail}",
        )
        for bad in landed.bad
    ]
    result.read += len(landed.bad)
    typed, malformed = coerce(raw, "labels")
    for i, row, bad, original in zip(
        positions, typed.iter_rows(named=True), malformed.to_list(), raw.iter_rows(named=True), strict=True
    ):
        result.read += 1
        record = {k: (REDACTED if k == "comment" and v else v) for k, v in original.items()}
        cand = _Candidate(key=f"row {i}", row=i, record=record)
        empty = [c.name for c in COLUMNS["labels"] if c.required and row[c.name] is None]
        if bad:
            cand.reason = bad
        elif empty:
            cand.reason = f"{Reason.MISSING_FIELD}: {empty[0]} is empty"
        elif row["label_value"] not in LABEL_VALUES:
            cand.reason = (
                f"{Reason.INVALID_VALUE}: label_value={row['label_value'][:40]!r} is not useful / not_useful"
            )
        elif not 0 <= row["confidence"] <= 1:
            cand.reason = f"{Reason.INVALID_VALUE}: confidence={row['confidence']} is not between 0 and 1"
        elif max(len(row["label_id"]), len(row["recommendation_id"]), len(row["reviewer_id"])) > MAX_ID:
            cand.reason = f"{Reason.INVALID_VALUE}: an id is longer than {MAX_ID} characters"
        else:
            cand.label = {
                "event_id": row["label_id"],
                "kind": "label",
                "label_id": row["label_id"],
                "reviewer_id": row["reviewer_id"],
                "recommendation_id": row["recommendation_id"],
                "label_value": row["label_value"],
                "confidence": float(row["confidence"]),
                "comment": (row["comment"] or "")[:MAX_COMMENT] or None,
                "origin": "import:csv",
                "labeled_at": iso(row["labeled_at"]),
            }
        out.append(cand)
    return sorted(out, key=lambda c: c.row or 0)


def import_labels(store: LabelStore, path: Path, fmt: str) -> ImportResult:
    """Import ``path`` into ``store``; idempotent: a second import of the same file adds nothing."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}")
    result = ImportResult(file=str(path), format=fmt)
    candidates = _label_studio(path, result) if fmt == "label-studio" else _csv(path, result)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    seen: set[str] = set()
    for cand in candidates:
        if cand.label is None:
            continue
        if cand.label["label_id"] in seen:
            cand.reason = (
                f"{Reason.DUPLICATE}: label_id {cand.label['label_id'][:80]!r} already seen in this file"
            )
        elif cand.label["recommendation_id"] not in store.served:
            cand.reason = (
                f"{Reason.UNKNOWN_RECOMMENDATION}: recommendation_id "
                f"{cand.label['recommendation_id'][:80]!r} is not a served recommendation"
            )
        seen.add(cand.label["label_id"])
    good = [c.label for c in candidates if c.reason is None and c.label is not None]
    refused = [c for c in candidates if c.reason is not None]
    result.imported, result.already_imported = store.insert_imported(good)
    store.insert_rejects(
        [
            {
                "reject_key": f"{digest}:{c.key}"[:120],
                "file": path.name,
                "file_row": c.row,
                "reason_code": str(c.reason).split(":")[0],
                "reason": c.reason,
                "record": json.dumps(c.record, default=str, sort_keys=True),
            }
            for c in refused
        ]
    )
    result.quarantined = len(refused)
    for c in refused:
        code = str(c.reason).split(":")[0]
        result.quarantined_by_reason[code] = result.quarantined_by_reason.get(code, 0) + 1
    result.quarantined_by_reason = dict(sorted(result.quarantined_by_reason.items()))
    result.samples = [{"where": c.key, "reason": c.reason} for c in refused[:5]]
    return result
