"""The rejects frame: one row per refused row, line or file, with its reason and where it came from.

Every stage that refuses something (ingestion of each source, normalization, label imports)
writes rows of `REJECT_SCHEMA`; the `quarantine` asset gathers them. ``reason`` is one line that
starts with the reason code (see `landing.Reason`); ``record`` holds the refused row's values as
JSON with personal values redacted, or nothing when the row could not be read at all (a bad line
or a whole file: ``landing_file`` and ``landing_row`` point at the original).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from fbloop_assets.lib.common.privacy import RAW_PERSONAL_COLUMNS, REDACTED
from fbloop_assets.lib.ingest.landing import Reason

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "stage": pl.String(),
    "source": pl.String(),
    "landing_file": pl.String(),
    "landing_row": pl.Int64(),
    "reason_code": pl.String(),
    "reason": pl.String(),
    "record": pl.String(),
}


@dataclass(frozen=True)
class BadLine:
    """A line of a text file that no reader can split into fields."""

    row: int  # the record's position in the file (1-based, header excluded), as ``landing_row``
    line: int  # its line in the file (1-based; a CSV header is line 1)
    code: Reason  # UNPARSEABLE_LINE or INVALID_UTF8
    detail: str  # what is wrong, never the line's content (it may hold personal data)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def concat_rejects(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The non-empty parts as one frame, in file and row order (whole-file rejects last per file)."""
    frame = pl.concat([p for p in parts if p.height] or [empty_rejects()])
    return frame.sort("landing_file", "landing_row", nulls_last=True)


def record_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column's value for the ``record`` JSON: personal values redacted, nested values kept nested."""
    value = pl.col(column)
    if column in RAW_PERSONAL_COLUMNS:
        return pl.when(value.is_null()).then(None).otherwise(pl.lit(REDACTED)).alias(column)
    if dtype.is_nested():
        return value
    if dtype == pl.Binary():
        return value.cast(pl.String, strict=False).alias(column)
    return value.cast(pl.String).alias(column)


def record_json(schema: pl.Schema | dict[str, pl.DataType], columns: Sequence[str]) -> pl.Expr:
    """The ``record`` JSON of the given columns of a frame with ``schema``."""
    return pl.struct([record_text(c, schema[c]) for c in columns]).struct.json_encode()


def rejects(frame: pl.DataFrame, stage: str, source: str, reason: pl.Expr, record: pl.Expr) -> pl.DataFrame:
    """Rejects of ``frame``'s rows (it holds ``landing_file`` and ``landing_row``); ``reason`` per row."""
    # rechunk (refused rows are few): polars 2.1 panics ("i < self.len()") on string views of rows
    # filtered out of a frame concatenated from several files
    refused = frame.rechunk().select(
        pl.lit(stage).alias("stage"),
        pl.lit(source).alias("source"),
        pl.col("landing_file"),
        pl.col("landing_row"),
        reason.str.split(":").list.first().alias("reason_code"),
        reason.alias("reason"),
        record.alias("record"),
    )
    return refused.cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def file_reject(stage: str, source: str, file: str, code: Reason, detail: str) -> pl.DataFrame:
    """One reject for a whole file (``landing_row`` empty)."""
    return _frame([_row(stage, source, file, None, code, detail)])


def line_rejects(bad: Sequence[BadLine], stage: str, source: str, file: str) -> pl.DataFrame:
    """One reject per bad line; the reason names the line."""
    return _frame([_row(stage, source, file, b.row, b.code, f"line {b.line}: {b.detail}") for b in bad])


def _row(stage: str, source: str, file: str, row: int | None, code: Reason, detail: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "source": source,
        "landing_file": file,
        "landing_row": row,
        "reason_code": str(code),
        "reason": f"{code}: {detail}",
        "record": None,
    }


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=REJECT_SCHEMA) if rows else empty_rejects()
