"""Where fbloop keeps its files under the data directory, and how it writes them atomically.

Layout (``<data>`` is ``$FBLOOP_DATA_DIR``, default ``./data``)::

    <data>/landing/<source>/<YYYY-MM-DD>/*.{csv,jsonl,parquet}   what upstream systems deliver
    <data>/rejects/<stage>/<YYYY-MM-DD>.parquet                   rows a stage refused, with reasons
    <data>/warehouse/<asset>/<YYYY-MM-DD>.parquet                 one file per asset and daily partition
    <data>/warehouse/<asset>/<YYYY-MM-DD>.json                    a daily decision record (dataset, weights)
    <data>/datasets/<version>/                                    FeedbackDataset versions
    <data>/weights/                                               weights versions and the production history
    <data>/exports/                                               anonymized training exports
    <data>/simulation/                                            simulator truth; never read by the pipeline

Every write goes to a temporary file in the target folder and is renamed into place, so a
reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

FILE_SUFFIXES = (".csv", ".jsonl", ".parquet")  # the landing file formats


@dataclass(frozen=True)
class Lake:
    root: Path

    def landing_dir(self, source: str, day: date) -> Path:
        return self.root / "landing" / source / day.isoformat()

    def landing_files(self, source: str, day: date) -> list[Path]:
        folder = self.landing_dir(source, day)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in FILE_SUFFIXES)

    def table_path(self, asset: str, day: date) -> Path:
        return self.root / "warehouse" / asset / f"{day.isoformat()}.parquet"

    def scan_tables(self, asset: str, days: list[date]) -> pl.LazyFrame | None:
        """One scan over the tables of ``asset`` for those of ``days`` that exist (None: none do)."""
        paths = [p for d in days if (p := self.table_path(asset, d)).exists()]
        return pl.scan_parquet(paths) if paths else None

    def first_partition(self, asset: str) -> date | None:
        """The earliest day ``asset`` has a table for (None: never materialized)."""
        folder = self.root / "warehouse" / asset
        days = [p.stem for p in folder.glob("*.parquet")] if folder.is_dir() else []
        return date.fromisoformat(min(days)) if days else None

    def latest_partition(self, asset: str, up_to: date) -> date | None:
        """The latest materialized daily file of ``asset`` on or before ``up_to``."""
        folder = self.root / "warehouse" / asset
        if not folder.is_dir():
            return None
        days = sorted(d for p in folder.glob("*.parquet") if (d := date.fromisoformat(p.stem)) <= up_to)
        return days[-1] if days else None

    def record_path(self, asset: str, day: date) -> Path:
        """A small JSON record of an asset's daily decision (dataset version, candidate, promotion)."""
        return self.root / "warehouse" / asset / f"{day.isoformat()}.json"

    def rejects_path(self, stage: str, day: date) -> Path:
        return self.root / "rejects" / stage / f"{day.isoformat()}.parquet"

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pl.DataFrame, target: Path) -> Path:
    """Write ``frame`` to ``target`` atomically (zstd-compressed Parquet)."""
    with atomic_path(target) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
    return target


def write_json(payload: Any, target: Path) -> Path:
    """Write ``payload`` as indented JSON to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return target


def sink_parquet(plan: pl.LazyFrame, target: Path) -> Path:
    """Stream a lazy plan into ``target`` atomically, without holding its result in memory."""
    with atomic_path(target) as tmp:
        plan.sink_parquet(tmp, compression="zstd", statistics=True)
    return target


def days_ending(day: date, n: int) -> list[date]:
    """The ``n`` days ending at ``day`` (inclusive), oldest first."""
    return [day - timedelta(days=i) for i in range(n - 1, -1, -1)]


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` (inclusive); empty when ``last`` is before ``first``."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """The data directory: ``explicit``, else ``$FBLOOP_DATA_DIR``, else ``./data`` (absolute)."""
    chosen = explicit or os.environ.get("FBLOOP_DATA_DIR") or "data"
    return Path(chosen).expanduser().resolve()


def frame_fingerprint(frame: pl.DataFrame | pl.LazyFrame) -> str:
    """A content hash of a frame's schema and rows (row order ignored), for data versions.

    Works on a lazy scan too, so a large file is fingerprinted in one streaming pass.
    """
    lazy = frame.lazy()
    digest = hashlib.sha256(repr(lazy.collect_schema()).encode())
    row_hash = pl.struct(pl.all()).hash(seed=0)
    n, total, low, high = (
        lazy.select(
            pl.len().alias("n"),
            row_hash.cast(pl.Decimal(38, 0)).sum().alias("total"),  # exact: a u64 sum would wrap
            row_hash.min().alias("low"),
            row_hash.max().alias("high"),
        )
        .collect()
        .row(0)
    )
    if n:
        digest.update(f"{n}:{total}:{low}:{high}".encode())
    return digest.hexdigest()[:16]
