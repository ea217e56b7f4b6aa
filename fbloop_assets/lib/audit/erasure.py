"""Erasure on request and consent withdrawal (GDPR art. 17 and 7(3)), without keeping the raw id.

`erase` takes raw subject ids (from the command line or a file, held only in memory), finds each
subject through its keyed pseudonym, and

1. removes its rows from every landing file and every Parquet table under the data directory
   (`erase_files`, each file rewritten atomically);
2. appends one record per subject to ``subject_erasures`` (who, when, why, the pseudonym, what
   was touched), which is also the suppression list ingestion applies from then on, so a re-run
   of any day cannot bring the subject back;
3. marks every FeedbackDataset version that read a day the subject was in as superseded (in its
   manifest, by erasure record id); the replacement is the version its loop day gets when re-run;
4. lists the training exports (from the export audit) whose window held such a day, and with
   ``rewrite_exports`` rewrites each in place with the same parameters (recorded as ``rewritten``).

`withdraw` only appends a ``withdrawal`` record: nothing already stored is touched, and the
subject is suppressed from then on. `erasure_report` is what ``fbloop audit erasures`` shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.audit.erase_files import Removed, erase_landing, erase_tables
from fbloop_assets.lib.common.lake import Lake, days_ending, write_json
from fbloop_assets.lib.common.privacy import pseudonymize
from fbloop_assets.lib.common.suppression import append, records
from fbloop_assets.lib.dataset.export_audit import ExportRequest, checked_export, list_exports


@dataclass(frozen=True)
class Actor:
    """Who erases, when, and with which key and configuration."""

    name: str
    now: datetime
    key: bytes
    mode: str
    group: str


def _day_of(name: str) -> str | None:
    """The partition day a data file belongs to (``.../<YYYY-MM-DD>[.parquet|/file]``)."""
    for part in reversed(Path(name).with_suffix("").parts):
        try:
            return date.fromisoformat(part).isoformat()
        except ValueError:
            continue
    return None


def _for_subject(removed: Removed, subject: int) -> dict[str, int]:
    return {name: per[subject] for name, per in sorted(removed.items()) if subject in per}


def _datasets_reading(lake: Lake, days: set[str]) -> list[dict[str, Any]]:
    """Every dataset version whose manifest read `normalized_feedback` of one of ``days``."""
    out = []
    for manifest_path in sorted((lake.root / "datasets").glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        read = set(manifest.get("partitions_read", {}).get("normalized_feedback", []))
        if read & days:
            loop_day = manifest.get("derivation_parameters", {}).get("loop_day")
            out.append({"version": manifest["version"], "loop_day": loop_day, "manifest": manifest_path})
    return out


def _exports_holding(engine: sa.Engine, days: set[str]) -> list[dict[str, Any]]:
    """Exports (latest record per file) whose window covers one of ``days`` and whose file exists."""
    latest: dict[str, dict[str, Any]] = {}
    for row in list_exports(engine):
        if row["status"] != "refused":
            latest[row["file"]] = row
    return [row for row in latest.values() if _window(row) & days and row["file_present"]]


def _window(export: dict[str, Any]) -> set[str]:
    params = export["parameters"]
    return {d.isoformat() for d in days_ending(date.fromisoformat(params["end_day"]), params["days_back"])}


def _rewrite(lake: Lake, engine: sa.Engine, export: dict[str, Any], actor: Actor) -> dict[str, Any]:
    params = export["parameters"]
    request = ExportRequest(
        date.fromisoformat(params["end_day"]),
        params["days_back"],
        params["min_feedback_fields"],
        params["format"],
        Path(export["file"]).parent,
    )
    done = checked_export(
        lake,
        request,
        mode=actor.mode,
        group=actor.group,
        engine=engine,
        actor=actor.name,
        via=f"erasure, rewriting export {export['id']}",
        now=actor.now,
        target=Path(export["file"]),
    )
    return {"export": export["id"], "file": export["file"], "record": done.record_id, "sha256": done.sha256}


def erase(
    lake: Lake, engine: sa.Engine, raw_ids: list[str], reason: str, actor: Actor, rewrite_exports: bool
) -> list[dict[str, Any]]:
    """Erase ``raw_ids`` (see the module docstring); one summary per subject, without the raw id."""
    subjects = sorted({r.strip() for r in raw_ids if r.strip()})
    if not subjects:
        raise ValueError("no subject id given")
    if not reason.strip():
        raise ValueError("--reason must say why (it is recorded)")
    keys = pseudonymize(pl.Series("subject_id", subjects), actor.key).to_list()
    landing = erase_landing(lake, subjects)
    tables = erase_tables(lake, subjects, keys)
    affected = []
    for i, pseudonym in enumerate(keys):
        files = _for_subject(landing, i) | _for_subject(tables, i)
        days = {d for name in files if (d := _day_of(name))}
        affected.append((pseudonym, files, days))
    every_day = set().union(*(days for _, _, days in affected))
    held = _exports_holding(engine, every_day)
    rewritten = {e["id"]: _rewrite(lake, engine, e, actor) for e in held} if rewrite_exports else {}
    summaries = []
    superseded_by: dict[str, list[int]] = {}
    for pseudonym, files, days in affected:
        datasets = _datasets_reading(lake, days)
        exports = [e for e in held if _window(e) & days]
        touched = {
            "files": files,
            "rows_removed": sum(files.values()),
            "days": sorted(days),
            "datasets_superseded": [{"version": d["version"], "loop_day": d["loop_day"]} for d in datasets],
            "exports_holding": [{"id": e["id"], "file": e["file"]} for e in exports],
            "exports_rewritten": [rewritten[e["id"]] for e in exports if e["id"] in rewritten],
        }
        record_id = append(engine, "erasure", pseudonym, actor.name, reason, touched, actor.now)
        for dataset in datasets:
            superseded_by.setdefault(str(dataset["manifest"]), []).append(record_id)
        summaries.append({"record": record_id, "pseudonym": pseudonym} | touched)
    for manifest_path, ids in superseded_by.items():
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
        earlier = manifest.get("superseded", {}).get("by_erasures", [])
        manifest["superseded"] = {"at": actor.now.isoformat(), "by_erasures": sorted({*earlier, *ids})}
        write_json(manifest, Path(manifest_path))
    return summaries


def withdraw(engine: sa.Engine, raw_id: str, reason: str, actor: Actor) -> dict[str, Any]:
    """Record a consent withdrawal: suppressed from now on, nothing stored is touched."""
    if not raw_id.strip():
        raise ValueError("no subject id given")
    (pseudonym,) = pseudonymize(pl.Series("subject_id", [raw_id.strip()]), actor.key).to_list()
    touched: dict[str, Any] = {"files": {}, "rows_removed": 0, "going_forward_only": True}
    record_id = append(engine, "withdrawal", pseudonym, actor.name, reason, touched, actor.now)
    return {"record": record_id, "pseudonym": pseudonym, "kind": "withdrawal"}


def _current_version(lake: Lake, loop_day: str | None) -> str | None:
    if loop_day is None:
        return None
    path = lake.record_path("feedback_dataset", date.fromisoformat(loop_day))
    if not path.exists():
        return None
    return str(json.loads(path.read_text(encoding="utf-8")).get("version"))


def erasure_report(lake: Lake, engine: sa.Engine) -> dict[str, Any]:
    """Every erasure and withdrawal against the dataset versions it superseded and their replacements."""
    rows = records(engine)
    superseded = {d["version"] for r in rows for d in r["touched"].get("datasets_superseded", [])}
    out = []
    for row in rows:
        versions = []
        for d in row["touched"].get("datasets_superseded", []):
            now = _current_version(lake, d["loop_day"])
            replacement = now if now is not None and now not in superseded else None
            versions.append(d | {"replacement": replacement})
        out.append(
            {
                "record": row["id"],
                "kind": row["kind"],
                "recorded_at": row["recorded_at"],
                "actor": row["actor"],
                "reason": row["reason"],
                "pseudonym": row["pseudonym"],
                "rows_removed": row["touched"].get("rows_removed", 0),
                "files": len(row["touched"].get("files", {})),
                "days": row["touched"].get("days", []),
                "datasets": versions,
                "exports_holding": row["touched"].get("exports_holding", []),
                "exports_rewritten": row["touched"].get("exports_rewritten", []),
            }
        )
    return {"erasures": out}
