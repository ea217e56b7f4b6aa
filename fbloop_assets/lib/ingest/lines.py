"""The line reader: a block of a CSV or JSON Lines file line by line, so that a bad line costs only itself.

`blocks` uses it on the blocks of a file that polars refuses (an invalid UTF-8 byte, a malformed
JSON line, a line with another number of fields than the header, a quote that is never closed,
a value nested deeper than polars parses). A Python loop over every line is too slow for a
whole 10-million-row delivery, and fine for the few blocks around a bad line.

Each line yields either a record or a `BadLine` with its number and what is wrong. Records are
numbered as polars numbers rows (1-based, CSV header excluded), bad lines included, so a row
keeps its ``landing_row`` whichever reader read it:

- CSV (RFC 4180: comma-separated, ``"`` quotes, ``""`` inside quotes): a record usually is one
  line; a quoted value may span lines. A record with another number of fields than the header is
  bad; when it spans lines, only its first line is refused (a quote that is never closed would
  otherwise swallow the lines after it) and reading resumes on the next line. A blank line is a
  record with every field empty, as polars reads it.
- JSON Lines: every non-blank line is one JSON object; blank lines are skipped, as polars does.
  ``NaN`` and ``Infinity`` are not JSON. Values become text as polars' reader writes them, so that
  `coerce` types both readers' rows alike.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from fbloop_assets.lib.ingest.landing import Reason
from fbloop_assets.lib.ingest.rejects import BadLine

MAX_RECORD_LINES = 1000  # a quoted CSV value may span this many lines before its quote counts as unclosed
_FIELD_LIMIT = 2**31 - 1  # polars reads values of any length; the csv module stops at 128 KiB by default


class UnreadableText(Exception):
    """A text file whose header cannot be read: nothing in it can be placed."""


@dataclass
class Lines:
    """What the line reader made of a block: the good records as text, their rows, the bad lines."""

    frame: pl.DataFrame  # the good records, every value text (or null)
    rows: list[int] = field(default_factory=list)  # each good record's position in the file
    bad: list[BadLine] = field(default_factory=list)
    consumed: int = 0  # lines of the block read (a record may end beyond the block's last line)


def split_lines(data: bytes) -> list[bytes]:
    """The lines of ``data`` without their line feeds (a final line feed ends the last line)."""
    pieces = data.split(b"\n")
    return pieces[:-1] if pieces and pieces[-1] == b"" else pieces


def _decode(raw: bytes) -> tuple[str | None, str]:
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        return None, f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not UTF-8"


def text_frame(columns: list[str], records: list[list[str | None]]) -> pl.DataFrame:
    data = {c: [r[i] for r in records] for i, c in enumerate(columns)}
    frame = pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String()))
    # polars reads an empty CSV field as null: the same here
    return frame.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in columns)


def csv_header(line: bytes) -> list[str]:
    """The column names of a CSV header line; `UnreadableText` if it cannot be read."""
    try:
        text = line.decode("utf-8-sig").removesuffix("\r")
        return next(csv.reader([text], strict=True), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableText(f"the header (line 1) cannot be read: {exc}") from exc


def csv_block(header: list[str], pieces: list[bytes], stop: int, row: int, line: int) -> Lines:
    """Read the records that start in ``pieces[:stop]``; the rest of ``pieces`` is lookahead.

    ``row`` and ``line`` are the record and line numbers before the block's first line.
    """
    csv.field_size_limit(_FIELD_LIMIT)
    columns = list(dict.fromkeys(header))  # a repeated name: its first column counts, as with polars
    first = [header.index(name) for name in columns]
    records: list[list[str | None]] = []
    result = Lines(pl.DataFrame())
    i = 0
    while i < stop:
        row += 1
        fields, span, problem = _csv_record(pieces, i, len(header))
        if problem:
            code = Reason.INVALID_UTF8 if problem.startswith("byte ") else Reason.UNPARSEABLE_LINE
            result.bad.append(BadLine(row, line + i + 1, code, problem))
            i += 1
            continue
        records.append([fields[k] for k in first])
        result.rows.append(row)
        i += span
    result.frame, result.consumed = text_frame(columns, records), i
    return result


def _csv_record(pieces: list[bytes], i: int, width: int) -> tuple[list[str], int, str]:
    """The record that starts on line ``i``: (fields, lines it spans, what is wrong or "")."""
    text, problem = _decode(pieces[i])
    if text is None:
        return [], 1, problem
    if text.strip() == "":
        return [""] * width, 1, ""
    if '"' not in text:
        fields, span = text.removesuffix("\r").split(","), 1
    else:
        reader = csv.reader(_decoded(pieces, i), strict=True)
        try:
            fields = next(reader)
        except (csv.Error, StopIteration) as exc:
            if reader.line_num > 1:
                return [], 1, "a quoted value is never closed"
            return [], 1, f"not valid CSV ({exc})"
        span = reader.line_num
    if len(fields) != width:
        if span > 1:
            return [], 1, "a quoted value is never closed"
        return [], 1, f"{len(fields)} fields where the header has {width}"
    return fields, span, ""


def _decoded(pieces: list[bytes], start: int) -> Iterator[str]:
    """Lines from ``start`` on, decoded, up to the first one that is not UTF-8 (or the span limit)."""
    for raw in pieces[start : start + MAX_RECORD_LINES]:
        text, _ = _decode(raw)
        if text is None:
            return
        yield text + "\n"


def jsonl_block(pieces: list[bytes], columns: list[str], row: int, line: int) -> Lines:
    """Read every line of ``pieces``, keeping the keys in ``columns`` (numbers as in `csv_block`)."""
    records: list[list[str | None]] = []
    result = Lines(pl.DataFrame(), consumed=len(pieces))
    for i, raw in enumerate(pieces):
        if not raw.strip():
            continue
        row += 1
        values, code, problem = _json_record(raw, columns)
        if code is not None:
            result.bad.append(BadLine(row, line + i + 1, code, problem))
            continue
        records.append(values)
        result.rows.append(row)
    result.frame = text_frame(columns, records)
    return result


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
_JSON_KINDS[type(None)] = "null"


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _json_record(raw: bytes, columns: list[str]) -> tuple[list[str | None], Reason | None, str]:
    text, problem = _decode(raw)
    if text is None:
        return [], Reason.INVALID_UTF8, problem
    try:
        value = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        return [], Reason.UNPARSEABLE_LINE, "a value nested too deeply to read"
    except ValueError as exc:  # json.JSONDecodeError is one; its message gives a position, not content
        return [], Reason.UNPARSEABLE_LINE, f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), "value")
        return [], Reason.UNPARSEABLE_LINE, f"a JSON {kind} where an object is expected"
    return [_text(value.get(c)) for c in columns], None, ""


def _text(value: Any) -> str | None:
    """A JSON value as polars' NDJSON reader writes it into a text column."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    # a lone surrogate escape ("\ud800") is no character of UTF-8
    return text if text.isascii() else text.encode("utf-8", "replace").decode()
