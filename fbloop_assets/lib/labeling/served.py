"""Which recommendations were served: the ids a label may be attached to, and their rows.

A recommendation is known once it appears in the serving log: in a warehouse partition of
``raw_recommendations`` or in a landing file under ``landing/recommendations/<day>/`` that the next
daily run has not ingested yet (`fbloop suggest` logs there). The index re-reads only when a file
was added, changed or removed (by size and modification time) or the UTC day changed, so the web
app can check every submitted label against it without reading Parquet on each request.

Landing files have not been validated yet, so every row is typed and validated here as
`raw_recommendations` does it (`lib.ingest.day.coerce` and `check_schema`, the same pandera
schema) with today (UTC) as the arrival day: a malformed row, a missing value, a rank below 1 or a
row served after today is skipped and counted (`invalid`, and a warning in the log), and never
reaches the queue. An unreadable file is skipped and counted as a whole.

This module does not judge lookback windows: `normalize` quarantines a label whose recommendation
was served too long before the day it arrived.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from fbloop_assets.lib.common.lake import FILE_SUFFIXES, Lake
from fbloop_assets.lib.ingest.day import check_schema, coerce, read_raw
from fbloop_assets.lib.ingest.landing import Reason, typed_schema
from fbloop_assets.lib.labeling.events import utc_now

SERVED_SCHEMA = typed_schema("recommendations") | {"serving_day": pl.Date()}
STAGE = "labeling_queue"
log = logging.getLogger("fbloop.labeling")


@dataclass(frozen=True)
class _Snapshot:
    signature: tuple[date, tuple[tuple[str, int, int], ...]]
    rows: pl.DataFrame
    ids: frozenset[str]
    invalid: dict[str, int]


class ServedRecommendations:
    """The serving log of a data directory, validated, re-read when its files or the day change.

    ``clock`` says what "today" is (UTC): rows served after it are invalid.
    """

    def __init__(self, lake: Lake, clock: Callable[[], datetime] = utc_now) -> None:
        self.lake = lake
        self.clock = clock
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
        files = self._signature(self._files())
        signature = (self.clock().astimezone(UTC).date(), files)
        with self._lock:
            if self._snapshot is not None and self._snapshot.signature == signature:
                return self._snapshot
            rows, invalid = _read_served([Path(s[0]) for s in files], signature[0])
            if invalid:
                counts = ", ".join(f"{n} {code}" for code, n in sorted(invalid.items()))
                log.warning("serving log: skipped invalid rows (%s)", counts)
            ids = frozenset(rows["recommendation_id"].to_list())
            self._snapshot = _Snapshot(signature, rows, ids, invalid)
            return self._snapshot

    def __contains__(self, recommendation_id: object) -> bool:
        return isinstance(recommendation_id, str) and recommendation_id in self.snapshot().ids

    def rows(self) -> pl.DataFrame:
        """Every served recommendation once (the first delivery wins), with its serving day."""
        return self.snapshot().rows

    def invalid(self) -> dict[str, int]:
        """Rows skipped as invalid, by quarantine reason (``unparseable_file`` counts files)."""
        return self.snapshot().invalid

    def latest_days(self, n: int) -> list[date]:
        days = self.rows()["serving_day"].unique().sort(descending=True).head(n).to_list()
        return sorted(days)


def _read_file(path: Path, today: date) -> tuple[pl.DataFrame, list[str]]:
    """One file's valid rows, typed and validated as `raw_recommendations` does; the invalid rows' reasons."""
    typed, malformed = coerce(read_raw(path), "recommendations")
    bad = malformed.is_not_null()
    reasons = malformed.filter(bad).str.split(":").list.first().to_list()
    typed = typed.filter(~bad).with_columns(
        pl.lit(path.name).alias("landing_file"), pl.int_range(1, pl.len() + 1).alias("landing_row")
    )
    valid, rejects = check_schema(typed, "recommendations", today, STAGE)
    return valid.drop("landing_file", "landing_row"), [*reasons, *rejects["reason_code"].to_list()]


def _read_served(files: list[Path], today: date) -> tuple[pl.DataFrame, dict[str, int]]:
    """The valid rows of ``files`` (as if they arrived ``today``) and the invalid ones by reason."""
    parts = []
    invalid: Counter[str] = Counter()
    for path in files:
        try:
            valid, refused = _read_file(path, today)
        except Exception:  # unreadable or untypable: the daily run quarantines the file with its reason
            log.warning("serving log: cannot read %s", path, exc_info=True)
            invalid[str(Reason.UNPARSEABLE_FILE)] += 1
            continue
        parts.append(valid)
        invalid.update(refused)
    empty = pl.DataFrame(schema=typed_schema("recommendations"))
    frame = pl.concat([empty, *parts], how="vertical_relaxed") if parts else empty
    rows = (
        frame.unique("recommendation_id", keep="first", maintain_order=True)
        .with_columns(pl.col("served_at").dt.date().alias("serving_day"))
        .cast(SERVED_SCHEMA)  # type: ignore[arg-type]
    )
    return rows, dict(invalid)
