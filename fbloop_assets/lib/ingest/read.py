"""Read one landing file into raw rows: polars' reader first, block by block if it refuses.

Text formats are read as text, every value a string (typing is `coerce`'s job); Parquet keeps its
own types. The common path is one polars read of the whole file. A CSV file is also checked for
lines with fewer fields than the header, which polars would silently pad with nulls; that check
is one streaming pass over the file's lines, about as long as the read. Only when polars refuses
a CSV or JSON Lines file, or that check finds a line it cannot vouch for, is the file read again
in blocks (`blocks`), the blocks polars refuses line by line (`lines`), so that a bad line is
quarantined alone with its line number and the rest of the file loads.

A file that no reader can open (a corrupt Parquet file, a CSV file without a header) or whose
columns include none of its source's (a CSV file with another delimiter reads as one column)
is refused whole: `UnreadableFile`, with the reason code and a one-line detail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from fbloop_assets.lib.ingest.blocks import READ_ERRORS, csv_blocks, fields_agree, jsonl_blocks
from fbloop_assets.lib.ingest.landing import COLUMNS, Reason
from fbloop_assets.lib.ingest.lines import UnreadableText
from fbloop_assets.lib.ingest.rejects import BadLine

_KEYS_SAMPLED = 1000  # lines of a JSON Lines file whose keys are listed when none is the source's
_SHOWN_COLUMNS = 8


class UnreadableFile(Exception):
    """A landing file that is refused whole: ``code`` and a one-line ``detail``."""

    def __init__(self, detail: str, code: Reason = Reason.UNPARSEABLE_FILE) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class LandingFile:
    """One landing file as read: its good rows (whole, or a Parquet scan), and its bad lines."""

    frame: pl.DataFrame | None = None  # text formats: every good record, as text
    rows: pl.Series | None = None  # their positions in the file when bad lines left gaps
    scan: pl.LazyFrame | None = None  # Parquet: read batch by batch
    height: int = 0  # good rows
    bad: list[BadLine] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Rows the file holds, bad lines included."""
        return self.height + len(self.bad)

    def batches(self, batch_rows: int) -> Iterator[tuple[pl.DataFrame, pl.Series]]:
        """The good rows in file order, ``batch_rows`` at a time, each with its ``landing_row``."""
        for offset in range(0, max(self.height, 1), batch_rows):
            if self.frame is not None:
                raw = self.frame.slice(offset, batch_rows)
            else:
                assert self.scan is not None
                try:
                    raw = self.scan.slice(offset, batch_rows).collect()
                except READ_ERRORS as exc:
                    raise UnreadableFile(first_line(exc)) from exc
            if self.rows is not None:
                rows = self.rows.slice(offset, batch_rows)
            else:
                rows = pl.int_range(offset + 1, offset + raw.height + 1, dtype=pl.Int64, eager=True)
            yield raw, rows.alias("landing_row")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def read_landing(path: Path, source: str) -> LandingFile:
    """Read a landing file of ``source``; `UnreadableFile` when it is refused whole."""
    contract = [c.name for c in COLUMNS[source]]
    if path.suffix == ".parquet":
        return _parquet(path, source, contract)
    if path.suffix == ".csv":
        return _csv(path, source, contract)
    if path.suffix == ".jsonl":
        return _jsonl(path, source, contract)
    raise UnreadableFile(f"{path.name}: not a landing file type (.csv, .jsonl or .parquet)")


def _parquet(path: Path, source: str, contract: list[str]) -> LandingFile:
    try:
        scan = pl.scan_parquet(path)
        names = scan.collect_schema().names()
        height = int(scan.select(pl.len()).collect().item())
    except READ_ERRORS as exc:
        raise UnreadableFile(first_line(exc)) from exc
    require_columns(path, source, names)
    return LandingFile(scan=scan.select(c for c in contract if c in names), height=height)


def _csv(path: Path, source: str, contract: list[str]) -> LandingFile:
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.NoDataError as exc:
        raise UnreadableFile("empty file: no header row") from exc
    except READ_ERRORS:
        frame = None  # polars refuses the file: read it again block by block
    if frame is not None:
        require_columns(path, source, frame.columns)
        if fields_agree(path, frame.width, frame.height):
            return LandingFile(frame=frame, height=frame.height)
    try:
        columns, good, rows, bad = csv_blocks(path.read_bytes())
    except UnreadableText as exc:
        raise UnreadableFile(str(exc)) from exc
    require_columns(path, source, columns)
    return LandingFile(frame=good, rows=rows, height=good.height, bad=bad)


def _jsonl(path: Path, source: str, contract: list[str]) -> LandingFile:
    try:
        frame = pl.read_ndjson(path, schema=dict.fromkeys(contract, pl.String()))
        result = LandingFile(frame=frame, height=frame.height)
    except READ_ERRORS:
        good, rows, bad = jsonl_blocks(path.read_bytes(), contract)
        result = LandingFile(frame=good, rows=rows, height=good.height, bad=bad)
    assert result.frame is not None
    holds_any = result.frame.select(pl.any_horizontal(pl.all().is_not_null()).any()).item()
    if result.frame.height and not holds_any:
        # no row holds any of the source's keys: which keys does the file hold?
        require_columns(path, source, _json_keys(path))
    return result


def _json_keys(path: Path) -> list[str]:
    keys: dict[str, None] = {}
    with path.open("rb") as handle:
        for _, raw in zip(range(_KEYS_SAMPLED), handle, strict=False):
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                keys |= dict.fromkeys(str(k) for k in value)
    return list(keys)


def require_columns(path: Path, source: str, found: Sequence[str]) -> None:
    """Refuse a file whose columns include none of ``source``'s, naming what it holds instead."""
    contract = [c.name for c in COLUMNS[source]]
    if set(found) & set(contract):
        return
    shown = ", ".join(repr(c[:40]) for c in found[:_SHOWN_COLUMNS])
    more = f" and {len(found) - _SHOWN_COLUMNS} more" if len(found) > _SHOWN_COLUMNS else ""
    detail = (
        f"{path.name} has none of the {source} columns ({', '.join(contract)}); "
        f"found {len(found)} column(s): {shown or 'none'}{more}"
    )
    if path.suffix == ".csv" and any(";" in c or "\t" in c for c in found):
        detail += "; the CSV contract is comma-separated, and this header holds ';' or a tab"
    raise UnreadableFile(detail, Reason.WRONG_COLUMNS)


def read_raw(path: Path) -> pl.DataFrame:
    """A landing file's rows as polars reads them, every column (text formats as text).

    For a quick look at a file (the label store's view of the serving log, tests): no careful
    reading, `UnreadableFile` when polars refuses it.
    """
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        if path.suffix == ".csv":
            return pl.read_csv(path, infer_schema=False, encoding="utf8")
        if path.suffix == ".jsonl":
            # every key as text, so that one odd value types as malformed instead of breaking the file
            keys: list[str] = pl.read_ndjson(path, infer_schema_length=1000).columns
            return pl.read_ndjson(path, schema={k: pl.String() for k in keys})
    except READ_ERRORS as exc:
        raise UnreadableFile(first_line(exc)) from exc
    raise UnreadableFile(f"unsupported file type {path.suffix!r}")
