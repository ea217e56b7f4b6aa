"""A text file polars refuses, read again in blocks: polars on each, the line reader on those it refuses.

One bad line among ten million should cost a few thousand lines of Python, not ten million:
the file is cut at line feeds into blocks of about `BLOCK_BYTES`, polars reads each block (a CSV
block with the file's header line in front), and only a block it refuses, or a CSV block whose
lines do not all hold the header's number of fields (`fields_agree`), goes to `lines`. A quoted
CSV value that spans lines makes its block go to the line reader, which may read on past the
block's end to finish the record; the next block starts where it stopped. Rows are numbered
across blocks as one reader of the whole file would number them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import polars as pl

from fbloop_assets.lib.ingest.lines import (
    MAX_RECORD_LINES,
    UnreadableText,
    csv_block,
    csv_header,
    jsonl_block,
    split_lines,
)
from fbloop_assets.lib.ingest.rejects import BadLine

BLOCK_BYTES = 4 << 20  # about 30,000 lines of a typical signals file
# polars raises several error types for broken files, and a Rust panic is a BaseException
READ_ERRORS = (Exception, pl.exceptions.PanicException)


@dataclass
class Blocks:
    """A text file's good records (every value text) with their rows, and its bad lines."""

    frames: list[pl.DataFrame] = field(default_factory=list)
    rows: list[pl.Series] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    row: int = 0  # records so far
    line: int = 0  # lines so far

    def add(self, frame: pl.DataFrame, rows: list[int] | None = None) -> None:
        first = self.row + 1
        numbers = rows if rows is not None else list(range(first, first + frame.height))
        self.frames.append(frame)
        self.rows.append(pl.Series("landing_row", numbers, dtype=pl.Int64))

    def result(self, columns: list[str]) -> tuple[pl.DataFrame, pl.Series, list[BadLine]]:
        empty = pl.DataFrame(schema=dict.fromkeys(columns, pl.String()))
        frame = pl.concat([empty, *(f.select(columns) for f in self.frames)])
        rows = pl.concat([pl.Series("landing_row", [], dtype=pl.Int64), *self.rows])
        return frame, rows, self.bad


def _end(data: bytes, start: int) -> int:
    """Where the block that starts at ``start`` ends: after the first line feed past BLOCK_BYTES."""
    cut = data.find(b"\n", start + BLOCK_BYTES)
    return len(data) if cut < 0 else cut + 1


def fields_agree(source: object, width: int, height: int) -> bool:
    """Whether each line of CSV ``source`` (a path or bytes) holds ``width`` fields, one of ``height`` rows.

    polars pads a line with too few fields with nulls; this is the check that it has none. Commas
    inside quotes do not count. A line with an odd number of quotes (a value spanning lines, or a
    quote never closed) cannot be judged line by line: the line reader decides.
    """
    line = pl.col("line")
    quoted = line.str.contains('"', literal=True)
    plain = line.filter(~quoted & line.is_not_null() & (line != "\r"))  # an empty line is a blank row
    with_quotes = line.filter(quoted)
    unquoted = with_quotes.str.replace_all(r'"[^"]*"', "")
    scan_source = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        lines, wrong, wrong_quoted, unpaired = (
            pl.scan_csv(
                scan_source,  # type: ignore[arg-type]
                has_header=False,
                separator="\x1f",
                quote_char=None,
                schema={"line": pl.String()},
            )
            .select(
                pl.len().alias("lines"),
                (plain.str.count_matches(",", literal=True) != width - 1).sum().alias("wrong"),
                (unquoted.str.count_matches(",", literal=True) != width - 1).sum().alias("wrong_quoted"),
                (with_quotes.str.count_matches('"', literal=True) % 2 == 1).sum().alias("unpaired"),
            )
            .collect(engine="streaming")
            .row(0)
        )
    except pl.exceptions.ComputeError:  # a unit-separator byte in the data: no verdict, read carefully
        return False
    return lines - 1 == height and wrong == wrong_quoted == unpaired == 0


def csv_blocks(data: bytes) -> tuple[list[str], pl.DataFrame, pl.Series, list[BadLine]]:
    """Read CSV ``data`` block by block: (columns, good records, their rows, bad lines)."""
    header_end = data.find(b"\n")
    if not data.strip():
        raise UnreadableText("empty file: no header row")
    header_line = data[: len(data) if header_end < 0 else header_end]
    header = csv_header(header_line)
    columns = list(dict.fromkeys(header))
    done = Blocks(line=1)
    start = len(data) if header_end < 0 else header_end + 1
    while start < len(data):
        end = _end(data, start)
        block = data[start:end]
        frame = _polars_csv(header_line + b"\n" + block, columns, len(header))
        if frame is not None:
            done.add(frame)
            done.row, done.line, start = done.row + frame.height, done.line + block.count(b"\n"), end
            continue
        pieces = split_lines(data[start : _lookahead(data, end)])
        lines = csv_block(header, pieces, len(split_lines(block)), done.row, done.line)
        done.add(lines.frame, lines.rows)
        done.bad += lines.bad
        done.row += len(lines.rows) + len(lines.bad)
        done.line += lines.consumed
        start += sum(len(p) + 1 for p in pieces[: lines.consumed])
    frame, rows, bad = done.result(columns)
    return columns, frame, rows, bad


def _lookahead(data: bytes, end: int) -> int:
    """Where the line reader's view of a block ends: far enough to finish a record that spans lines."""
    at = end
    for _ in range(MAX_RECORD_LINES):
        cut = data.find(b"\n", at)
        if cut < 0:
            return len(data)
        at = cut + 1
    return at


def _polars_csv(block: bytes, columns: list[str], width: int) -> pl.DataFrame | None:
    try:
        frame = pl.read_csv(block, infer_schema=False, encoding="utf8")
    except READ_ERRORS:
        return None
    if frame.width != width or not fields_agree(block, width, frame.height):
        return None
    return frame.select(columns)


def jsonl_blocks(data: bytes, columns: list[str]) -> tuple[pl.DataFrame, pl.Series, list[BadLine]]:
    """Read JSON Lines ``data`` block by block, keeping the keys in ``columns``."""
    done = Blocks()
    schema = dict.fromkeys(columns, pl.String())
    start = 0
    while start < len(data):
        end = _end(data, start)
        block = data[start:end]
        try:
            frame = pl.read_ndjson(block, schema=schema)
        except READ_ERRORS:
            lines = jsonl_block(split_lines(block), columns, done.row, done.line)
            done.add(lines.frame, lines.rows)
            done.bad += lines.bad
            done.row += len(lines.rows) + len(lines.bad)
        else:
            done.add(frame)
            done.row += frame.height
        done.line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        start = end
    return done.result(columns)
