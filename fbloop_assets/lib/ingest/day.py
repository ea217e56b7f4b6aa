"""Ingest one arrival day of a landing source: read, type and validate its files, split off rejects.

Nothing is dropped silently: every input row ends either in the valid frame or in the rejects
frame with a reason code (see `landing.Reason`) and a one-line reason, together with the file
and 1-based row it came from and its original values as JSON (personal values redacted; the
landing file keeps them). A line no reader can split into fields is refused alone, with its line
number (`read`, `lines`); a file that cannot be opened at all, or has none of the source's
columns, becomes one reject for the whole file; either way the rest of the day still loads.
Files are typed and validated in batches of `BATCH_ROWS` rows, so a 10-million-row delivery does
not need several copies of itself in memory; duplicates are judged once, over the whole day.

This module does not know about recommendations served on other days: references to unknown
recommendations are judged in `normalize`, where the window of served recommendations is known.
`coerce`, `read_raw` and `REJECT_SCHEMA` are re-exported for the stages that import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandera.polars as pa
import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.privacy import RAW_PERSONAL_COLUMNS, REDACTED
from fbloop_assets.lib.ingest.coerce import coerce
from fbloop_assets.lib.ingest.landing import COLUMNS, ID_COLUMN, Reason
from fbloop_assets.lib.ingest.read import UnreadableFile, read_landing
from fbloop_assets.lib.ingest.read import read_raw as read_raw
from fbloop_assets.lib.ingest.rejects import REJECT_SCHEMA as REJECT_SCHEMA
from fbloop_assets.lib.ingest.rejects import (
    concat_rejects,
    empty_rejects,
    file_reject,
    line_rejects,
    record_json,
    rejects,
)
from fbloop_assets.lib.ingest.schemas import FUTURE_CHECK, source_schema

BATCH_ROWS = 1_000_000  # rows typed and validated at a time: bounds memory on very large files


@dataclass
class DayIngest:
    """The outcome of ingesting one source for one arrival day."""

    valid: pl.DataFrame
    rejects: pl.DataFrame
    files: list[str] = field(default_factory=list)
    rows_read: int = 0

    def reject_counts(self) -> dict[str, int]:
        return dict(sorted(self.rejects.group_by("reason_code").len().iter_rows()))


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def empty_typed(source: str) -> pl.DataFrame:
    schema = {c.name: c.dtype for c in COLUMNS[source]} | {
        "landing_file": pl.String(),
        "landing_row": pl.Int64(),
    }
    return pl.DataFrame(schema=schema)


def _ingest_file(
    path: Path, name: str, source: str, day: date, stage: str, batch_rows: int
) -> tuple[list[pl.DataFrame], list[pl.DataFrame], int]:
    """Read, type and validate one file batch by batch: (valid parts, reject parts, rows read)."""
    landed = read_landing(path, source)
    valid: list[pl.DataFrame] = []
    refused = [line_rejects(landed.bad, stage, source, name)]
    for raw, rows in landed.batches(batch_rows):
        good, bad = type_rows(raw, rows, name, source, stage)
        checked, invalid = check_schema(good, source, day, stage)
        valid.append(checked)
        refused += [bad, invalid]
    return valid, refused, landed.records


def type_rows(
    raw: pl.DataFrame, rows: pl.Series, file: str, source: str, stage: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type raw rows of ``file`` (``rows``: their positions): (typed rows, malformed-value rejects)."""
    typed, malformed = coerce(raw, source)
    typed = typed.with_columns(pl.lit(file).alias("landing_file"), rows.alias("landing_row"))
    bad = malformed.is_not_null()
    if not bad.any():
        return typed, empty_rejects()
    present = [c.name for c in COLUMNS[source] if c.name in raw.columns]
    failed = raw.select(present).with_columns(
        pl.lit(file).alias("landing_file"), rows.alias("landing_row"), malformed.alias("_reason")
    )
    refused = rejects(failed.filter(bad), stage, source, pl.col("_reason"), record_json(raw.schema, present))
    return typed.filter(~bad), refused


def _landed(lake: Lake, source: str, day: date) -> list[Path]:
    """Every file of the day's landing folder but hidden ones (a writer's temporary file, ``.x.tmp``).

    A file of another type is not skipped in silence: `read_landing` refuses it, so it is quarantined.
    """
    folder = lake.landing_dir(source, day)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def ingest_day(lake: Lake, source: str, day: date, stage: str, batch_rows: int = BATCH_ROWS) -> DayIngest:
    """Read, type and validate every landing file of ``source`` that arrived on ``day``."""
    parts: list[pl.DataFrame] = []
    refused: list[pl.DataFrame] = []
    names: list[str] = []
    rows_read = 0
    for path in _landed(lake, source, day):
        name = lake.relative(path)
        names.append(name)
        try:
            valid, bad, n = _ingest_file(path, name, source, day, stage, batch_rows)
        except UnreadableFile as exc:
            # whole or nothing: rows of a file that breaks halfway are not kept either
            refused.append(file_reject(stage, source, name, exc.code, exc.detail))
            continue
        parts.extend(valid)
        refused.extend(bad)
        rows_read += n
    typed_all = pl.concat(parts) if parts else empty_typed(source)
    valid_all, duplicates = split_duplicates(typed_all, source, stage)
    return DayIngest(
        valid=valid_all, rejects=concat_rejects([*refused, duplicates]), files=names, rows_read=rows_read
    )


_PRIORITY = {
    Reason.MISSING_FIELD: 0,
    Reason.INVALID_VALUE: 1,
    Reason.FUTURE_TIMESTAMP: 2,
    Reason.DUPLICATE: 3,
}


def later_copies(ids: pl.Series) -> pl.Series:
    """True for each non-null id already seen earlier in ``ids``: ``~is_first_distinct()``, faster.

    polars' hash-table ``is_first_distinct`` took a third of a 10M-signal day's ingestion; sorting
    the ids' 64-bit hashes costs a fraction of it, and only the rows whose hash repeats (every copy
    of a repeated id, and any colliding pair) are compared exactly, in their original order.
    """
    hashes = ids.hash(seed=0)
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    flags = pl.repeat(False, ids.len(), dtype=pl.Boolean, eager=True).alias(ids.name)
    if repeated.is_empty():
        return flags
    rows = hashes.is_in(repeated.implode()).arg_true()
    candidates = ids.gather(rows)
    return flags.scatter(rows, candidates.is_not_null() & ~candidates.is_first_distinct())


def split_duplicates(typed: pl.DataFrame, source: str, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split valid rows into (first copies, later copies of the same id), in file and row order."""
    id_col = ID_COLUMN[source]
    flags = later_copies(typed[id_col])
    if not flags.any():
        return typed, empty_rejects()
    dups = typed.filter(flags)
    reason = pl.format(
        f"{Reason.DUPLICATE}: {id_col} '{{}}' already seen in this day's files", pl.col(id_col)
    )
    contract = [c.name for c in COLUMNS[source]]
    return typed.filter(~flags), rejects(dups, stage, source, reason, record_json(typed.schema, contract))


def check_schema(
    typed: pl.DataFrame, source: str, day: date, stage: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split typed rows into (valid, rejects) by the day's pandera schema."""
    contract = [c.name for c in COLUMNS[source]]
    _, day_end = day_bounds(day)
    try:
        source_schema(source, day_end).validate(typed, lazy=True)
        return typed, empty_rejects()
    except pa.errors.SchemaErrors as exc:
        # rechunk: polars 2.1 panics on string views of pandera's frame ("i < self.len()")
        failing = _failure_reasons(exc.failure_cases.rechunk())
    indexed = typed.with_row_index("_i")
    bad = indexed.join(failing, on="_i", how="inner")
    rest = indexed.join(failing, on="_i", how="anti").drop("_i")
    return rest, rejects(bad, stage, source, pl.col("_reason"), record_json(typed.schema, contract))


def _failure_reasons(cases: pl.DataFrame) -> pl.DataFrame:
    """One reason per failing row index, the most basic failure first."""
    if cases["index"].null_count():
        whole = cases.filter(pl.col("index").is_null()).row(0, named=True)
        raise RuntimeError(f"schema-level failure on column {whole['column']}: {whole['check']}")
    check = pl.col("check")
    code = (
        pl.when(check == "not_nullable")
        .then(pl.lit(str(Reason.MISSING_FIELD)))
        .when(check.str.starts_with(FUTURE_CHECK))
        .then(pl.lit(str(Reason.FUTURE_TIMESTAMP)))
        .when(check == "field_uniqueness")
        .then(pl.lit(str(Reason.DUPLICATE)))
        .otherwise(pl.lit(str(Reason.INVALID_VALUE)))
    )
    value = (
        pl.when(pl.col("column").is_in(RAW_PERSONAL_COLUMNS))
        .then(pl.lit(REDACTED))
        .otherwise(pl.col("failure_case").cast(pl.String).str.slice(0, 60).str.replace_all(r"[\r\n\t]", " "))
    )
    reason = (
        pl.when(code == str(Reason.MISSING_FIELD))
        .then(pl.format("{}: {} is empty", code, pl.col("column")))
        .otherwise(pl.format("{}: {}='{}' fails {}", code, pl.col("column"), value, check))
    )
    priority = code.replace_strict({str(k): v for k, v in _PRIORITY.items()}, return_dtype=pl.Int8)
    return (
        cases.select(
            pl.col("index").cast(pl.UInt32).alias("_i"), reason.alias("_reason"), priority.alias("_p")
        )
        .sort("_i", "_p")
        .unique("_i", keep="first", maintain_order=True)
        .drop("_p")
    )
