"""One bad line costs only itself, one odd file only itself: the careful reader and whole-file refusals.

Each case writes 20 good label rows with one hostile line in the middle (row 8); the 20 rows must
load with the row numbers they would have without the bad line, and the bad line must be
quarantined alone with its line number.
"""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.ingest.blocks import csv_blocks
from fbloop_assets.lib.ingest.day import ingest_day
from fbloop_tests.conftest import write_landing

DAY = date(2026, 1, 5)
HEADER = "label_id,reviewer_id,recommendation_id,label_value,confidence,labeled_at,comment"


def label_row(i: int) -> dict:
    return {
        "label_id": f"l{i:02d}",
        "reviewer_id": "rev-1",
        "recommendation_id": "rec-1",
        "label_value": "useful",
        "confidence": 0.5,
        "labeled_at": "2026-01-05T09:30:00Z",
        "comment": None,
    }


def csv_line(i: int) -> bytes:
    return f"l{i:02d},rev-1,rec-1,useful,0.5,2026-01-05T09:30:00Z,".encode()


def json_line(i: int) -> bytes:
    return json.dumps(label_row(i)).encode()


def write_file(lake: Lake, name: str, lines: list[bytes]) -> Path:
    folder = lake.landing_dir("labels", DAY)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def with_bad_line(line: bytes, fmt: str = "csv") -> list[bytes]:
    make = csv_line if fmt == "csv" else json_line
    body = [make(i) for i in range(1, 8)] + [line] + [make(i) for i in range(9, 22)]
    return [HEADER.encode(), *body] if fmt == "csv" else body


CSV_BAD_LINES = {
    "too few fields": (b"l08,rev-1,rec-1,useful,0.5", "5 fields where the header has 7"),
    "too many fields": (b"l08,rev-1,rec-1,useful,0.5,2026-01-05T09:30:00Z,,extra", "8 fields"),
    "a quote never closed": (b'l08,rev-1,rec-1,useful,0.5,2026-01-05T09:30:00Z,"oops', "never closed"),
    "text after a closing quote": (b'l08,"rev"-1,rec-1,useful,0.5,2026-01-05T09:30:00Z,', "not valid CSV"),
    "invalid UTF-8": (b"l08,rev-\xff1,rec-1,useful,0.5,2026-01-05T09:30:00Z,", "byte 0xff at column 9"),
}
JSON_BAD_LINES = {
    "malformed JSON": (b'{"label_id": "l08", "reviewer_id": ', "not valid JSON"),
    "not an object": (b'["l08", "rev-1"]', "a JSON array where an object is expected"),
    "NaN": (b'{"label_id": "l08", "confidence": NaN}', "NaN is not a JSON value"),
    "nested 100,000 deep": (
        b'{"label_id": "l08", "comment": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "deep",
    ),
    "invalid UTF-8": (b'{"label_id": "l08\xc3\x28"}', "byte 0xc3 at column 18"),
}


@pytest.mark.parametrize("case", sorted(CSV_BAD_LINES))
def test_a_bad_csv_line_is_quarantined_alone_with_its_line_number(lake: Lake, case: str) -> None:
    line, detail = CSV_BAD_LINES[case]
    write_file(lake, "labels.csv", with_bad_line(line))
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    rows = result.valid["landing_row"].to_list()
    assert rows == [*range(1, 8), *range(9, 22)]  # the numbers they have in a file without the bad line
    (reject,) = result.rejects.iter_rows(named=True)
    assert reject["landing_row"] == 8 and reject["record"] is None
    assert reject["reason"].startswith(f"{reject['reason_code']}: line 9: ") and detail in reject["reason"]
    expected = "invalid_utf8" if case == "invalid UTF-8" else "unparseable_line"
    assert reject["reason_code"] == expected
    assert result.rows_read == 21


@pytest.mark.parametrize("case", sorted(JSON_BAD_LINES))
def test_a_bad_json_line_is_quarantined_alone_with_its_line_number(lake: Lake, case: str) -> None:
    line, detail = JSON_BAD_LINES[case]
    write_file(lake, "labels.jsonl", with_bad_line(line, fmt="jsonl"))
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["landing_row"].to_list() == [*range(1, 8), *range(9, 22)]
    assert result.valid["label_id"].to_list() == [f"l{i:02d}" for i in (*range(1, 8), *range(9, 22))]
    (reject,) = result.rejects.iter_rows(named=True)
    assert reject["landing_row"] == 8 and reject["reason"].startswith(f"{reject['reason_code']}: line 8: ")
    assert detail in reject["reason"]


def test_both_readers_give_the_same_rows(lake: Lake) -> None:
    # the careful reader (after one bad line) and polars (on the same file without it) agree value
    # for value, in every column
    write_file(lake, "labels.csv", with_bad_line(b"l08,too,few"))
    careful = ingest_day(lake, "labels", DAY, stage="raw_labels").valid
    write_file(lake, "labels.csv", with_bad_line(csv_line(8)))
    fast = ingest_day(lake, "labels", DAY, stage="raw_labels").valid
    assert careful.equals(fast.filter(pl.col("landing_row") != 8))
    for name, fmt in (("labels.jsonl", "jsonl"),):
        (lake.landing_dir("labels", DAY) / "labels.csv").unlink()
        write_file(lake, name, with_bad_line(b"{oops", fmt=fmt))
        careful_json = ingest_day(lake, "labels", DAY, stage="raw_labels").valid.drop("landing_file")
        assert careful_json.equals(fast.filter(pl.col("landing_row") != 8).drop("landing_file"))


def test_a_quoted_value_may_span_lines_and_blank_lines_stay_rows() -> None:
    data = b'a,b\n1,"two\nlines"\n\n3,"say ""hi"""\r\n4,5,6\n'
    columns, frame, rows, bad = csv_blocks(data)
    assert frame.rows() == [("1", "two\nlines"), (None, None), ("3", 'say "hi"')]
    assert rows.to_list() == [1, 2, 3]
    assert [(b.row, b.line, b.detail) for b in bad] == [(4, 6, "3 fields where the header has 2")]


def test_blocks_number_rows_as_one_read_would(monkeypatch: pytest.MonkeyPatch) -> None:
    # blocks of 40 to 400 bytes cut the file everywhere, also inside the quoted value that spans
    # two lines; polars reads most blocks, the line reader those around the bad lines
    good = [csv_line(i) for i in range(1, 30)]
    good[11] = csv_line(12) + b'"multi\nline"'
    data = b"\n".join([HEADER.encode(), *good[:20], b"l99,bad", *good[20:], b"\xff"]) + b"\n"
    for size in range(40, 400, 9):
        monkeypatch.setattr("fbloop_assets.lib.ingest.blocks.BLOCK_BYTES", size)
        _, frame, rows, bad = csv_blocks(data)
        assert frame["label_id"].to_list() == [f"l{i:02d}" for i in range(1, 30)], size
        assert rows.to_list() == [*range(1, 21), *range(22, 31)], size
        assert frame["comment"][11] == "multi\nline"
        assert [(b.row, b.line) for b in bad] == [(21, 23), (31, 33)], size


def test_a_short_line_sends_the_file_to_the_careful_reader(lake: Lake) -> None:
    # polars pads a line with too few fields with nulls; the missing comment is optional, so without
    # the field count check row 8 would load with its values in the wrong columns
    write_file(lake, "labels.csv", with_bad_line(b"l08,rev-1,useful,0.5,2026-01-05T09:30:00Z,x"))
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.rejects.select("landing_row", "reason_code").rows() == [(8, "unparseable_line")]


@pytest.mark.parametrize(
    ("separator", "hint"), [(";", True), ("\t", True), ("|", False)], ids=["semicolon", "tab", "pipe"]
)
def test_a_csv_with_another_delimiter_is_refused_whole_and_the_rest_loads(
    lake: Lake, separator: str, hint: bool
) -> None:
    write_landing(lake, "labels", DAY.isoformat(), "good.csv", [label_row(1)])
    lines = [HEADER.encode(), csv_line(2), csv_line(3)]
    write_file(lake, "other.csv", [line.replace(b",", separator.encode()) for line in lines])
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["l01"]
    (reject,) = result.rejects.iter_rows(named=True)
    assert reject["reason_code"] == "wrong_columns" and reject["landing_row"] is None
    assert reject["landing_file"].endswith("other.csv")
    assert "other.csv has none of the labels columns (label_id, reviewer_id" in reject["reason"]
    shown = repr(f"label_id{separator}reviewer_id")[:-1]  # the header as found, a tab as \\t
    assert f"found 1 column(s): {shown}" in reject["reason"] and "\t" not in reject["reason"]
    assert ("the CSV contract is comma-separated" in reject["reason"]) is hint


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_file_of_unrelated_columns_is_refused_whole(lake: Lake, suffix: str) -> None:
    write_landing(lake, "labels", DAY.isoformat(), "good.csv", [label_row(1)])
    write_landing(lake, "labels", DAY.isoformat(), f"other{suffix}", [{"user": "u1", "score": 3}] * 4)
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["l01"]
    (reject,) = result.rejects.iter_rows(named=True)
    assert reject["reason_code"] == "wrong_columns"
    assert f"other{suffix} has none of the labels columns" in reject["reason"]
    assert "found 2 column(s): 'user', 'score'" in reject["reason"]


def test_some_contract_columns_are_enough_and_missing_ones_refuse_rows(lake: Lake) -> None:
    write_landing(lake, "labels", DAY.isoformat(), "part.jsonl", [{"label_id": "l1", "user": "u1"}])
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.rejects["reason"].to_list() == ["missing_field: reviewer_id is empty"]


def test_nested_and_huge_values(lake: Lake) -> None:
    huge = "x" * 2_000_000
    rows = [
        label_row(1) | {"confidence": {"deep": [1, 2]}},  # nested where a number belongs: malformed
        label_row(2) | {"comment": huge},  # a long comment is fine (and dropped by normalization)
        label_row(3) | {"reviewer_id": ["a", "b"]},  # a list where text belongs: kept as its JSON text
    ]
    write_landing(lake, "labels", DAY.isoformat(), "x.jsonl", rows)
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["l02", "l03"]
    assert result.valid["comment"][0] == huge and result.valid["reviewer_id"][1] == '["a", "b"]'
    assert result.rejects["reason"].to_list() == [
        "malformed_value: confidence='{\"deep\": [1, 2]}' is not a finite number"
    ]


def test_parquet_columns_of_another_type(lake: Lake) -> None:
    frame = pl.DataFrame(
        {
            "label_id": ["a", "b", "c"],
            "reviewer_id": ["r", "r", "r"],
            "recommendation_id": ["rec-1"] * 3,
            "label_value": ["useful"] * 3,
            "confidence": [1, 0, 1],  # integers where a number belongs: converted
            "labeled_at": pl.Series([datetime(2026, 1, 5, 9, tzinfo=UTC)] * 3).dt.convert_time_zone(
                "Asia/Tokyo"
            ),
            "comment": [[1], [2], None],  # a list where text belongs: malformed
        }
    )
    path = lake.landing_dir("labels", DAY)
    path.mkdir(parents=True)
    frame.write_parquet(path / "x.parquet")
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["c"]
    assert result.valid["confidence"].to_list() == [1.0]
    assert result.valid["labeled_at"].to_list() == [datetime(2026, 1, 5, 9, tzinfo=UTC)]
    assert result.rejects["reason"].to_list() == ["malformed_value: comment='<redacted>' is not text"] * 2


def test_a_file_of_another_type_is_quarantined_not_ignored(lake: Lake) -> None:
    write_landing(lake, "labels", DAY.isoformat(), "good.csv", [label_row(1)])
    folder = lake.landing_dir("labels", DAY)
    (folder / "labels.json").write_text("[]")
    (folder / ".good.csv.tmp").write_text("a writer's temporary file")
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["l01"]
    assert result.files == [f"landing/labels/{DAY}/good.csv", f"landing/labels/{DAY}/labels.json"]
    assert result.rejects.select("reason").rows() == [
        ("unparseable_file: labels.json: not a landing file type (.csv, .jsonl or .parquet)",)
    ]


@pytest.mark.parametrize("bad", [False, True], ids=["polars", "line reader"])
def test_a_byte_order_mark_and_crlf_line_ends_are_read(lake: Lake, bad: bool) -> None:
    lines = [
        b"\xef\xbb\xbf" + HEADER.encode(),
        csv_line(1),
        b"l02,only,three" if bad else csv_line(2),
        csv_line(3),
    ]
    write_file(lake, "labels.csv", [line + b"\r" for line in lines])
    result = ingest_day(lake, "labels", DAY, stage="raw_labels")
    assert result.valid["label_id"].to_list() == (["l01", "l03"] if bad else ["l01", "l02", "l03"])
    assert result.valid["comment"].to_list() == [None] * result.valid.height
    assert result.rejects.height == int(bad)
