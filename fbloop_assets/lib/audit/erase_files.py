"""Remove subjects' rows from the files under the data directory, each file rewritten atomically.

Landing files (CSV, JSON Lines, Parquet) lose every row whose ``subject_id`` is one of the raw
ids; a line that cannot be parsed goes if it holds one of them at all. Every Parquet table
outside ``landing/`` and ``simulation/`` (the simulator's truth, never read by the pipeline)
loses every row whose ``subject_id`` is a raw id or whose ``subject_key`` is a pseudonym (or,
in identifiable mode, the raw id). Each function returns what it removed, per file and subject.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fbloop_assets.lib.common.lake import FILE_SUFFIXES, Lake, atomic_path

SKIPPED_FOLDERS = ("landing", "simulation")  # landing: its own rules; simulation: not fbloop's

# {relative file: {subject index: rows removed}}
Removed = dict[str, dict[int, int]]


def _count(removed: Removed, name: str, subject: int) -> None:
    per_file = removed.setdefault(name, {})
    per_file[subject] = per_file.get(subject, 0) + 1


def _holds(text: str, raw_ids: list[str]) -> int | None:
    return next((i for i, raw in enumerate(raw_ids) if raw in text), None)


def _csv_text(path: Path, raw_ids: list[str], name: str, removed: Removed) -> str | None:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or "subject_id" not in rows[0]:
        return None
    column = rows[0].index("subject_id")
    index = {raw: i for i, raw in enumerate(raw_ids)}
    kept = [rows[0]]
    for row in rows[1:]:
        hit = index.get(row[column]) if len(row) > column else _holds(",".join(row), raw_ids)
        if hit is None and len(row) != len(rows[0]):
            hit = _holds(",".join(row), raw_ids)  # a malformed row is quarantined, but its text stays
        if hit is None:
            kept.append(row)
        else:
            _count(removed, name, hit)
    if name not in removed:
        return None
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(kept)
    return out.getvalue()


def _jsonl_text(path: Path, raw_ids: list[str], name: str, removed: Removed) -> str | None:
    index = {raw: i for i, raw in enumerate(raw_ids)}
    kept: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines(keepends=True):
        try:
            value = json.loads(line)
            hit = (
                index.get(str(value.get("subject_id"))) if isinstance(value, dict) else _holds(line, raw_ids)
            )
        except (json.JSONDecodeError, TypeError):
            hit = _holds(line, raw_ids)
        if hit is None:
            kept.append(line)
        else:
            _count(removed, name, hit)
    return "".join(kept) if name in removed else None


def _parquet_frame(
    path: Path, match: dict[str, dict[str, int]], name: str, removed: Removed
) -> pl.DataFrame | None:
    """``match``: column -> {value: subject index}; the frame without those rows (None: none)."""
    try:
        schema = pl.read_parquet_schema(path)
    except Exception:  # noqa: BLE001 - a broken delivery stays as it is; the pipeline quarantines it
        return None
    columns = [c for c in match if c in schema and schema[c] == pl.String]
    if not columns:
        return None
    frame = pl.read_parquet(path)
    subject = pl.coalesce(
        *(pl.col(c).replace_strict(match[c], default=None, return_dtype=pl.Int64) for c in columns),
        pl.lit(None, pl.Int64),
    )
    hits = frame.select(subject.alias("_subject"))["_subject"]
    if not hits.is_not_null().any():
        return None
    for index, n in hits.drop_nulls().value_counts().iter_rows():
        removed.setdefault(name, {})[int(index)] = int(n)
    return frame.filter(hits.is_null())


def _landing_files(lake: Lake) -> Iterator[Path]:
    folder = lake.root / "landing"
    yield from sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in FILE_SUFFIXES)


def erase_landing(lake: Lake, raw_ids: list[str]) -> Removed:
    """Rewrite every landing file that holds one of ``raw_ids``; what was removed."""
    removed: Removed = {}
    by_id = {raw: i for i, raw in enumerate(raw_ids)}
    for path in _landing_files(lake):
        name = lake.relative(path)
        if path.suffix == ".parquet":
            frame = _parquet_frame(path, {"subject_id": by_id}, name, removed)
            if frame is not None:
                with atomic_path(path) as tmp:
                    frame.write_parquet(tmp)
            continue
        text = (_csv_text if path.suffix == ".csv" else _jsonl_text)(path, raw_ids, name, removed)
        if text is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    return removed


def erase_tables(lake: Lake, raw_ids: list[str], keys: list[str]) -> Removed:
    """Rewrite every Parquet table outside landing and simulation that holds one of the subjects.

    ``keys[i]`` is the pseudonym of ``raw_ids[i]``; a subject key may also be the raw id itself
    (identifiable mode).
    """
    removed: Removed = {}
    by_id = {raw: i for i, raw in enumerate(raw_ids)}
    match = {"subject_id": by_id, "subject_key": by_id | {k: i for i, k in enumerate(keys)}}
    for path in sorted(lake.root.rglob("*.parquet")):
        if path.relative_to(lake.root).parts[0] in SKIPPED_FOLDERS:
            continue
        name = lake.relative(path)
        frame = _parquet_frame(path, match, name, removed)
        if frame is not None:
            with atomic_path(path) as tmp:
                frame.write_parquet(tmp)
    return removed
