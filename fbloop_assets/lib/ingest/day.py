"""Read one day of a landing source, type it, validate it, and split good rows from rejects.

Nothing is dropped silently: every input row ends either in the valid frame or in the rejects
frame with a reason code (see `landing.Reason`) and a one-line reason, together with the file
and 1-based row it came from and its original values as JSON (personal values redacted; the
landing file keeps them). A file that cannot be parsed at
all becomes one reject of kind ``unparseable_file`` and the rest of the day still loads.
Files are typed and validated in batches of `BATCH_ROWS` rows, so a 10-million-row delivery does
not need several copies of itself in memory; duplicates are judged once, over the whole day.

This module does not know about recommendations served on other days: references to unknown
recommendations are judged in `normalize`, where the window of served recommendations is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.privacy import RAW_PERSONAL_COLUMNS, REDACTED, redacted_text
from fbloop_assets.lib.ingest.landing import COLUMNS, ID_COLUMN, UTC_DATETIME, Column, Reason
from fbloop_assets.lib.ingest.schemas import FUTURE_CHECK, source_schema

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "stage": pl.String(),
    "source": pl.String(),
    "landing_file": pl.String(),
    "landing_row": pl.Int64(),
    "reason_code": pl.String(),
    "reason": pl.String(),
    "record": pl.String(),
}

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


class UnreadableFile(Exception):
    """A landing file that cannot be parsed at all."""


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


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def read_raw(path: Path) -> pl.DataFrame:
    """Read a landing file as it is: text formats as strings, Parquet with its own types."""
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        if path.suffix == ".csv":
            return pl.read_csv(path, infer_schema=False, encoding="utf8")
        if path.suffix == ".jsonl":
            return _read_jsonl(path)
    except Exception as exc:  # polars raises several error types for broken files
        raise UnreadableFile(_first_line(exc)) from exc
    raise UnreadableFile(f"unsupported file type {path.suffix!r}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def _read_jsonl(path: Path) -> pl.DataFrame:
    # Every key as text, so that one odd value types as malformed instead of breaking the file.
    keys: list[str] = pl.read_ndjson(path, infer_schema_length=1000).columns
    return pl.read_ndjson(path, schema={k: pl.String() for k in keys})


def _type_name(dtype: pl.DataType) -> str:
    if dtype == UTC_DATETIME:
        return "a timestamp with a UTC offset (RFC 3339)"
    names = {
        pl.Int64(): "an integer",
        pl.Float64(): "a finite number",
        pl.Boolean(): "true or false",
        pl.Date(): "a date (YYYY-MM-DD)",
        pl.String(): "text",
    }
    return names.get(dtype, str(dtype))


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def _parse_rfc3339(text: pl.Expr) -> pl.Expr:
    # An explicit format per row: inferring one from the first value would fail every other style.
    with_offset = text.str.replace(r"[zZ]$", "+00:00")
    return pl.coalesce(
        with_offset.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
        for fmt in ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
    )


def _parse(raw: pl.Expr, raw_dtype: pl.DataType, col: Column) -> pl.Expr:
    """Typed value of ``raw``; null where the raw value cannot be read as the column's type."""
    target = col.dtype
    if raw_dtype == target and target != pl.String():
        parsed = raw
    elif raw_dtype == pl.String():
        text = _blank_to_null(raw)
        if target == pl.String():
            parsed = text
        elif target == UTC_DATETIME:
            parsed = _parse_rfc3339(text)
        elif target == pl.Date():
            parsed = text.str.to_date("%Y-%m-%d", strict=False)
        elif target == pl.Boolean():
            low = text.str.to_lowercase()
            parsed = pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
        else:
            parsed = text.cast(target, strict=False)
    elif isinstance(raw_dtype, pl.Datetime) and target == UTC_DATETIME:
        # a naive timestamp is malformed: its time zone would be a guess
        parsed = raw.dt.convert_time_zone("UTC").cast(UTC_DATETIME) if raw_dtype.time_zone else pl.lit(None)
    elif isinstance(raw_dtype, pl.Datetime) and target == pl.Date():
        parsed = raw.dt.date()
    else:
        parsed = raw.cast(target, strict=False)
    if target == pl.Float64():
        parsed = pl.when(parsed.is_finite()).then(parsed).otherwise(None)
    return parsed.cast(target).alias(col.name)


def coerce(raw: pl.DataFrame, source: str) -> tuple[pl.DataFrame, pl.Series]:
    """Type ``raw`` to the source's contract; also return, per row, the first malformed-value reason."""
    typed: list[pl.Expr] = []
    malformed: list[pl.Expr] = []
    for col in COLUMNS[source]:
        if col.name not in raw.columns:
            typed.append(pl.lit(None, dtype=col.dtype).alias(col.name))
            continue
        raw_dtype = raw.schema[col.name]
        parsed = _parse(pl.col(col.name), raw_dtype, col)
        present = (
            _blank_to_null(pl.col(col.name)).is_not_null()
            if raw_dtype == pl.String()
            else pl.col(col.name).is_not_null()
        )
        typed.append(parsed)
        shown = redacted_text(col.name).str.slice(0, 60)
        malformed.append(
            pl.when(present & parsed.is_null()).then(
                pl.format(
                    f"{Reason.MALFORMED_VALUE}: {col.name}='{{}}' is not {_type_name(col.dtype)}", shown
                )
            )
        )
    reasons = raw.select(
        pl.coalesce(malformed).alias("reason") if malformed else pl.lit(None, pl.String).alias("reason")
    )
    return raw.select(typed), reasons.to_series()


def _as_json(columns: list[str]) -> pl.Expr:
    return pl.struct([redacted_text(c) for c in columns]).struct.json_encode()


def _rejects(frame: pl.DataFrame, stage: str, source: str, reason: pl.Expr, record: pl.Expr) -> pl.DataFrame:
    return frame.select(
        pl.lit(stage).alias("stage"),
        pl.lit(source).alias("source"),
        pl.col("landing_file"),
        pl.col("landing_row"),
        reason.str.split(":").list.first().alias("reason_code"),
        reason.alias("reason"),
        record.alias("record"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _file_reject(stage: str, source: str, file: str, error: str) -> pl.DataFrame:
    reason = f"{Reason.UNPARSEABLE_FILE}: {error}"
    return pl.DataFrame(
        [
            {
                "stage": stage,
                "source": source,
                "landing_file": file,
                "landing_row": None,
                "reason_code": str(Reason.UNPARSEABLE_FILE),
                "reason": reason,
                "record": None,
            }
        ],
        schema=REJECT_SCHEMA,
    )


def empty_typed(source: str) -> pl.DataFrame:
    schema = {c.name: c.dtype for c in COLUMNS[source]} | {
        "landing_file": pl.String(),
        "landing_row": pl.Int64(),
    }
    return pl.DataFrame(schema=schema)


BATCH_ROWS = 1_000_000  # rows typed and validated at a time: bounds memory on very large files


def _batches(path: Path, batch_rows: int) -> Iterator[pl.DataFrame]:
    """A landing file's raw rows in order, ``batch_rows`` at a time; UnreadableFile if unreadable."""
    if path.suffix != ".parquet":
        yield from read_raw(path).iter_slices(batch_rows)
        return
    try:
        scan = pl.scan_parquet(path)
        total = int(scan.select(pl.len()).collect().item())
    except Exception as exc:  # polars raises several error types for broken files
        raise UnreadableFile(_first_line(exc)) from exc
    for offset in range(0, max(total, 1), batch_rows):
        try:
            yield scan.slice(offset, batch_rows).collect()
        except Exception as exc:
            raise UnreadableFile(_first_line(exc)) from exc


def _ingest_file(
    path: Path, name: str, source: str, day: date, stage: str, batch_rows: int
) -> tuple[list[pl.DataFrame], list[pl.DataFrame], int]:
    """Type and validate one file batch by batch: (valid parts, reject parts, rows read)."""
    valid: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    offset = 0
    for raw in _batches(path, batch_rows):
        typed, malformed = coerce(raw, source)
        provenance = [
            pl.lit(name).alias("landing_file"),
            pl.int_range(offset + 1, offset + raw.height + 1, dtype=pl.Int64).alias("landing_row"),
        ]
        typed = typed.with_columns(provenance)
        bad = malformed.is_not_null()
        if bad.any():
            raw_bad = (
                raw.with_columns(provenance).filter(bad).with_columns(malformed.filter(bad).alias("_reason"))
            )
            rejects.append(_rejects(raw_bad, stage, source, pl.col("_reason"), _as_json(raw.columns)))
            typed = typed.filter(~bad)
        good, invalid = check_schema(typed, source, day, stage)
        valid.append(good)
        rejects.append(invalid)
        offset += raw.height
    return valid, rejects, offset


def ingest_day(lake: Lake, source: str, day: date, stage: str, batch_rows: int = BATCH_ROWS) -> DayIngest:
    """Read, type and validate every landing file of ``source`` that arrived on ``day``."""
    parts: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    names: list[str] = []
    rows_read = 0
    for path in lake.landing_files(source, day):
        name = lake.relative(path)
        names.append(name)
        try:
            valid, refused, n = _ingest_file(path, name, source, day, stage, batch_rows)
        except UnreadableFile as exc:
            # whole or nothing: rows of a file that breaks halfway are not kept either
            rejects.append(_file_reject(stage, source, name, str(exc)))
            continue
        parts.extend(valid)
        rejects.extend(refused)
        rows_read += n
    typed_all = pl.concat(parts) if parts else empty_typed(source)
    valid_all, duplicates = split_duplicates(typed_all, source, stage)
    rejects.append(duplicates)
    all_rejects = pl.concat([r for r in rejects if r.height] or [empty_rejects()])
    return DayIngest(
        valid=valid_all,
        rejects=all_rejects.sort("landing_file", "landing_row", nulls_last=True),
        files=names,
        rows_read=rows_read,
    )


_PRIORITY = {
    Reason.MISSING_FIELD: 0,
    Reason.INVALID_VALUE: 1,
    Reason.FUTURE_TIMESTAMP: 2,
    Reason.DUPLICATE: 3,
}


def split_duplicates(typed: pl.DataFrame, source: str, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split valid rows into (first copies, later copies of the same id), in file and row order."""
    id_col = ID_COLUMN[source]
    is_dup = pl.col(id_col).is_not_null() & ~pl.col(id_col).is_first_distinct()
    flags = typed.select(is_dup.alias("_dup")).to_series()
    if not flags.any():
        return typed, empty_rejects()
    dups = typed.filter(flags)
    reason = pl.format(
        f"{Reason.DUPLICATE}: {id_col} '{{}}' already seen in this day's files", pl.col(id_col)
    )
    contract = [c.name for c in COLUMNS[source]]
    return typed.filter(~flags), _rejects(dups, stage, source, reason, _as_json(contract))


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
    return rest, _rejects(bad, stage, source, pl.col("_reason"), _as_json(contract))


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
        .otherwise(pl.col("failure_case").cast(pl.String).str.slice(0, 60))
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


STORE_FILE = "label_store"  # the `landing_file` of labels that came from the label store


def _import_rejects(rows: list[dict[str, Any]], stage: str) -> pl.DataFrame:
    """An import's quarantined rows (kept by the store) in the reject schema."""
    return pl.DataFrame(
        [
            {
                "stage": stage,
                "source": "labels",
                "landing_file": f"{STORE_FILE}:import:{r['file']}",
                "landing_row": r["file_row"],
                "reason_code": r["reason_code"],
                "reason": r["reason"],
                "record": r["record"],
            }
            for r in rows
        ],
        schema=REJECT_SCHEMA,
    )


def add_store_labels(
    landed: DayIngest,
    store_labels: pl.DataFrame,
    store_rejects: list[dict[str, Any]],
    day: date,
    stage: str,
) -> DayIngest:
    """The day's labels: landing files first, then the labels the store recorded that day.

    Store labels pass the same typing and schema checks as a landing file named `STORE_FILE`
    (row = position in recording order); a label id already delivered by a landing file that day
    is a duplicate. The store's import rejects of the day join the rejects.
    """
    contract = [c.name for c in COLUMNS["labels"]]
    raw = store_labels.select(contract)
    typed, malformed = coerce(raw, "labels")
    provenance = [
        pl.lit(STORE_FILE).alias("landing_file"),
        pl.int_range(1, raw.height + 1, dtype=pl.Int64).alias("landing_row"),
    ]
    typed = typed.with_columns(provenance)
    bad = malformed.is_not_null()
    rejects = [landed.rejects, _import_rejects(store_rejects, stage)]
    if bad.any():
        raw_bad = (
            raw.with_columns(provenance).filter(bad).with_columns(malformed.filter(bad).alias("_reason"))
        )
        rejects.append(_rejects(raw_bad, stage, "labels", pl.col("_reason"), _as_json(contract)))
        typed = typed.filter(~bad)
    good, invalid = check_schema(typed, "labels", day, stage)
    valid, duplicates = split_duplicates(pl.concat([landed.valid, good]), "labels", stage)
    rejects += [invalid, duplicates]
    return DayIngest(
        valid=valid,
        rejects=pl.concat([r for r in rejects if r.height] or [empty_rejects()]).sort(
            "landing_file", "landing_row", nulls_last=True
        ),
        files=[*landed.files, *([STORE_FILE] if raw.height or store_rejects else [])],
        rows_read=landed.rows_read + raw.height + len(store_rejects),
    )
