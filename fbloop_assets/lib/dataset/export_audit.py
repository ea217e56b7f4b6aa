"""One code path for every training export (the `feedback_export` asset and `fbloop export`).

`checked_export` writes the file (`export.export_training_pairs`), reads it back through the
blocking `privacy` guard, and records the export in fbloop's database, table ``exports``: who,
when, through what (``cli`` or the asset's run), the parameters, the file, its row count and its
SHA-256. A file the guard refuses is deleted before anyone can read it and recorded as
``refused``. Export files are 0640 in a 0750 folder; with ``export.group`` set both belong to that
group (the ML team), so no one else on the machine can read them.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.outcome import GuardOutcome, enforce
from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.dataset.build import file_sha256
from fbloop_assets.lib.dataset.export import ExportStats, export_training_pairs
from fbloop_assets.lib.dataset.guards import privacy

DIRECTORY_PERMISSIONS = 0o750
PRIVACY_SCAN_ROWS = 10_000  # rows read back by the guard; the columns are what it judges first

exports = sa.Table(
    "exports",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("exported_at", sa.String(40), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("via", sa.String(200), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("file", sa.String(1000), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),  # written | refused | rewritten
    sa.Column("detail", sa.String(2000), nullable=False),
)


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the window, the filter, the format and the folder."""

    end_day: date
    days_back: int
    min_feedback_fields: int
    fmt: str
    out_dir: Path

    def parameters(self) -> dict[str, Any]:
        return {
            "end_day": self.end_day.isoformat(),
            "days_back": self.days_back,
            "min_feedback_fields": self.min_feedback_fields,
            "format": self.fmt,
            "out_dir": str(self.out_dir),
        }


@dataclass(frozen=True)
class CheckedExport:
    """An export, the privacy guard's verdict on the written file, and its audit record's id."""

    stats: ExportStats
    outcome: GuardOutcome
    record_id: int
    sha256: str | None


def _secure_directory(folder: Path, group: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, DIRECTORY_PERMISSIONS)
    if group:
        shutil.chown(folder, group=group)


def _group_checked(group: str) -> str:
    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            raise ValueError(f"export.group {group!r} is not a group on this machine") from None
    return group


def _read_back(path: Path, fmt: str) -> pl.DataFrame:
    if fmt == "csv":
        return pl.read_csv(path, n_rows=PRIVACY_SCAN_ROWS, infer_schema_length=PRIVACY_SCAN_ROWS)
    return pl.read_parquet(path, n_rows=PRIVACY_SCAN_ROWS)


def record(engine: sa.Engine, values: dict[str, Any]) -> int:
    """Append one row to ``exports``; its id."""
    with engine.begin() as connection:
        inserted = connection.execute(exports.insert().values(**values).returning(exports.c.id))
        return int(inserted.scalar_one())


def checked_export(
    lake: Lake,
    request: ExportRequest,
    *,
    mode: str,
    group: str,
    engine: sa.Engine,
    actor: str,
    via: str,
    now: datetime,
    target: Path | None = None,
) -> CheckedExport:
    """Export, judge the written file, delete it if refused, secure it, record it.

    With ``target`` (an earlier export's file) the new file replaces it atomically and is
    recorded as ``rewritten``: how an erasure rewrites the exports that held a subject.
    """
    _group_checked(group)
    _secure_directory(request.out_dir, group)
    stats = export_training_pairs(
        lake,
        end_day=request.end_day,
        days_back=request.days_back,
        min_feedback_fields=request.min_feedback_fields,
        fmt=request.fmt,
        out_dir=request.out_dir,
        now=now,
    )
    outcome = enforce(privacy(_read_back(stats.file, request.fmt), mode, f"export {stats.file.name}"), True)
    digest: str | None = None
    if outcome.failed:
        stats.file.unlink()  # personal data must not stay readable, not even for the ML team
    else:
        if group:
            shutil.chown(stats.file, group=group)
        if target is not None:
            os.replace(stats.file, target)
            stats = replace(stats, file=target)
        digest = file_sha256(stats.file)
    record_id = record(
        engine,
        {
            "exported_at": now.astimezone(UTC).isoformat(),
            "actor": actor,
            "via": via,
            "parameters": request.parameters() | {"privacy_mode": mode, "group": group},
            "file": str(stats.file),
            "rows": stats.exported,
            "sha256": digest,
            "status": "refused" if outcome.failed else "rewritten" if target else "written",
            "detail": outcome.detail[:2000],
        },
    )
    return CheckedExport(stats, outcome, record_id, digest)


def list_exports(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every recorded export, oldest first, with whether its file still exists and its mode."""
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(sa.select(exports).order_by(exports.c.id))]
    for row in rows:
        path = Path(row["file"])
        row["parameters"] = (
            row["parameters"] if isinstance(row["parameters"], dict) else json.loads(row["parameters"])
        )
        row["file_present"] = path.exists()
        row["file_mode"] = oct(stat.S_IMODE(path.stat().st_mode)) if path.exists() else None
    return rows
