"""Which recommendations were served: the ids a label may be attached to, and their rows.

A recommendation is known once it appears in the serving log: in a warehouse partition of
``raw_recommendations`` or in a landing file under ``landing/recommendations/<day>/`` that the next
daily run has not ingested yet (`fbloop suggest` logs there). The index re-reads only when a file
was added, changed or removed (by size and modification time), so the web app can check every
submitted label against it without reading Parquet on each request.

This module does not judge lookback windows: `normalize` quarantines a label whose recommendation
was served too long before the day it arrived.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from fbloop_assets.lib.common.lake import FILE_SUFFIXES, Lake
from fbloop_assets.lib.ingest.day import coerce, read_raw
from fbloop_assets.lib.ingest.landing import typed_schema

SERVED_SCHEMA = typed_schema("recommendations") | {"serving_day": pl.Date()}


@dataclass(frozen=True)
class _Snapshot:
    signature: tuple[tuple[str, int, int], ...]
    rows: pl.DataFrame
    ids: frozenset[str]


class ServedRecommendations:
    """The serving log of a data directory, re-read when its files change."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def _files(self) -> list[Path]:
        warehouse = self.lake.root / "warehouse" / "raw_recommendations"
        landing = self.lake.root / "landing" / "recommendations"
        files = sorted(warehouse.glob("*.parquet")) if warehouse.is_dir() else []
        if landing.is_dir():
            files += sorted(p for p in landing.glob("*/*") if p.is_file() and p.suffix in FILE_SUFFIXES)
        return files

    def _signature(self, files: list[Path]) -> tuple[tuple[str, int, int], ...]:
        out = []
        for path in files:
            try:
                st = path.stat()
            except FileNotFoundError:  # renamed away between listing and stat
                continue
            out.append((str(path), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def snapshot(self) -> _Snapshot:
        files = self._files()
        signature = self._signature(files)
        with self._lock:
            if self._snapshot is not None and self._snapshot.signature == signature:
                return self._snapshot
            rows = _read_served([Path(s[0]) for s in signature])
            self._snapshot = _Snapshot(signature, rows, frozenset(rows["recommendation_id"].to_list()))
            return self._snapshot

    def __contains__(self, recommendation_id: object) -> bool:
        return isinstance(recommendation_id, str) and recommendation_id in self.snapshot().ids

    def rows(self) -> pl.DataFrame:
        """Every served recommendation once (the first delivery wins), with its serving day."""
        return self.snapshot().rows

    def latest_days(self, n: int) -> list[date]:
        days = self.rows()["serving_day"].unique().sort(descending=True).head(n).to_list()
        return sorted(days)


def _read_served(files: list[Path]) -> pl.DataFrame:
    parts = []
    for path in files:
        try:
            raw = read_raw(path)
        except Exception:  # an unreadable landing file is the daily run's to quarantine, not ours
            continue
        if "recommendation_id" not in raw.columns:
            continue
        typed, malformed = coerce(raw, "recommendations")
        parts.append(typed.filter(malformed.is_null() & pl.col("recommendation_id").is_not_null()))
    empty = pl.DataFrame(schema=typed_schema("recommendations"))
    frame = pl.concat([empty, *parts], how="vertical_relaxed") if parts else empty
    return (
        frame.unique("recommendation_id", keep="first", maintain_order=True)
        .with_columns(pl.col("served_at").dt.date().alias("serving_day"))
        .cast(SERVED_SCHEMA)  # type: ignore[arg-type]
    )
