"""Type a source's raw rows to its landing contract; a value that cannot be read is malformed.

Text (every value of a CSV or JSON Lines file) is parsed by the column's type: integers, finite
numbers, ``true``/``false`` (also ``t``/``f``, ``yes``/``no``, ``y``/``n``, ``1``/``0``, any case),
dates ``YYYY-MM-DD`` and RFC 3339 timestamps with an offset. Surrounding whitespace is ignored and
an empty value is missing. A Parquet column keeps its type when it is the contract's and is
converted when nothing is lost (an integer column as a number, whole floats as integers, a
timezone-aware timestamp as UTC). Anything else (a naive timestamp, a fraction for an integer,
a nested value, infinity) is malformed, never guessed: its row goes to quarantine with the value.
"""

from __future__ import annotations

import polars as pl

from fbloop_assets.lib.common.privacy import RAW_PERSONAL_COLUMNS, REDACTED
from fbloop_assets.lib.ingest.landing import COLUMNS, UTC_DATETIME, Column, Reason

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_BOOLEANS = {t: True for t in _TRUE} | {f: False for f in _FALSE}
_SHOWN_CHARS = 60
# What nearly every writer emits (UTC with a Z, `isoformat` style): parsed first, in one pass; only
# the values it misses are tried against every RFC 3339 form (`parse_rfc3339`), which costs about
# twice as much per value (the Z rewrite and two formats) and was the largest part of typing a
# day's conversion CSV.
_COMMON_RFC3339 = "%Y-%m-%dT%H:%M:%S%.fZ"
_TYPED = "__typed_"


def type_name(dtype: pl.DataType) -> str:
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


def blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def parse_rfc3339(text: pl.Expr) -> pl.Expr:
    # An explicit format per row: inferring one from the first value would fail every other style.
    with_offset = text.str.replace(r"[zZ]$", "+00:00")
    return pl.coalesce(
        with_offset.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
        for fmt in ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
    )


def _common_rfc3339(text: pl.Expr) -> pl.Expr:
    return text.str.to_datetime(_COMMON_RFC3339, strict=False, time_unit="us").dt.replace_time_zone("UTC")


def _from_text(text: pl.Expr, target: pl.DataType) -> pl.Expr:
    if target == pl.String():
        return text
    if target == UTC_DATETIME:
        return _common_rfc3339(text)  # the other forms: `_other_timestamp_forms`
    if target == pl.Date():
        return text.str.to_date("%Y-%m-%d", strict=False)
    if target == pl.Boolean():
        return text.str.to_lowercase().replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean)
    return text.cast(target, strict=False)


def _from_typed(raw: pl.Expr, raw_dtype: pl.DataType, target: pl.DataType) -> pl.Expr | None:
    """A Parquet column converted to ``target`` where nothing is lost; None: not convertible."""
    if raw_dtype == target:
        return raw
    if isinstance(raw_dtype, pl.Datetime) and raw_dtype.time_zone:
        utc = raw.dt.convert_time_zone("UTC")
        if target == UTC_DATETIME:
            return utc.cast(UTC_DATETIME)
        if target == pl.Date():
            return utc.dt.date()
    if target == pl.String() and not raw_dtype.is_nested() and raw_dtype != pl.Object():
        return raw.cast(pl.String, strict=False)
    if target == pl.Int64() and raw_dtype.is_integer():
        return raw.cast(pl.Int64, strict=False)
    if target == pl.Int64() and raw_dtype.is_float():
        return pl.when(raw.is_finite() & (raw == raw.floor())).then(raw.cast(pl.Int64, strict=False))
    if target == pl.Float64() and raw_dtype.is_numeric():
        return raw.cast(pl.Float64, strict=False)
    return None


def _parse(raw: pl.Expr, raw_dtype: pl.DataType, col: Column) -> pl.Expr:
    """Typed value of ``raw``; null where the raw value cannot be read as the column's type."""
    target = col.dtype
    if raw_dtype == pl.String():
        parsed: pl.Expr | None = _from_text(blank_to_null(raw), target)
    else:
        parsed = _from_typed(raw, raw_dtype, target)
    if parsed is None:
        parsed = pl.lit(None, dtype=target)
    if target == pl.Float64():
        parsed = pl.when(parsed.is_finite()).then(parsed).otherwise(None)
    return parsed.cast(target).alias(col.name)


def _shown(name: str, dtype: pl.DataType) -> pl.Expr:
    """A refused value as the reason shows it: short, on one line, personal values redacted."""
    if name in RAW_PERSONAL_COLUMNS:
        return pl.lit(REDACTED)
    if dtype.is_nested() or dtype == pl.Object():
        return pl.lit("(a nested value)")
    text = pl.col(name).cast(pl.String, strict=False).fill_null("(not text)")
    return text.str.slice(0, _SHOWN_CHARS).str.replace_all(r"[\r\n\t]", " ")


def _present(name: str, raw_dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    return blank_to_null(column).is_not_null() if raw_dtype == pl.String() else column.is_not_null()


def _other_timestamp_forms(frame: pl.DataFrame, raw_schema: pl.Schema, source: str) -> pl.DataFrame:
    """Timestamps of text columns that the common form missed, parsed by every RFC 3339 form."""
    for col in COLUMNS[source]:
        if col.dtype != UTC_DATETIME or raw_schema.get(col.name) != pl.String():
            continue
        typed = _TYPED + col.name
        missed = frame.select(_present(col.name, pl.String()) & pl.col(typed).is_null()).to_series()
        if not missed.any():
            continue
        rows = missed.arg_true()
        text = frame[col.name].gather(rows)
        parsed = pl.select(parse_rfc3339(blank_to_null(pl.lit(text)))).to_series()
        frame = frame.with_columns(frame[typed].scatter(rows, parsed))
    return frame


def coerce(raw: pl.DataFrame, source: str) -> tuple[pl.DataFrame, pl.Series]:
    """Type ``raw`` to the source's contract; also return, per row, the first malformed-value reason."""
    typed: list[pl.Expr] = []
    malformed: list[pl.Expr] = []
    for col in COLUMNS[source]:
        if col.name not in raw.columns:
            typed.append(pl.lit(None, dtype=col.dtype).alias(_TYPED + col.name))
            continue
        raw_dtype = raw.schema[col.name]
        typed.append(_parse(pl.col(col.name), raw_dtype, col).alias(_TYPED + col.name))
        text = f"{Reason.MALFORMED_VALUE}: {col.name}='{{}}' is not {type_name(col.dtype)}"
        shown = _shown(col.name, raw_dtype)
        failed = _present(col.name, raw_dtype) & pl.col(_TYPED + col.name).is_null()
        malformed.append(pl.when(failed).then(pl.format(text, shown)))
    reason = pl.coalesce(malformed) if malformed else pl.lit(None, pl.String)
    # with_columns, not select: literals (columns the file lacks) take the frame's height
    out = _other_timestamp_forms(raw.with_columns(*typed), raw.schema, source).with_columns(
        reason.alias("_malformed")
    )
    return out.select(pl.col(_TYPED + c.name).alias(c.name) for c in COLUMNS[source]), out[
        "_malformed"
    ].alias("reason")
