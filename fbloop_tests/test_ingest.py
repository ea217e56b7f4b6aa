"""Ingestion: typing, validation and quarantine of landing files; nothing is dropped silently."""

from datetime import UTC, date, datetime

import polars as pl
import pytest

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.ingest.day import coerce, ingest_day
from fbloop_tests.conftest import write_landing

DAY = "2026-01-05"


def label(label_id: str, **overrides: object) -> dict:
    row = {
        "label_id": label_id,
        "reviewer_id": "rev-1",
        "recommendation_id": "rec-1",
        "label_value": "useful",
        "confidence": "0.8",
        "labeled_at": "2026-01-05T09:30:00Z",
        "comment": "",
    }
    return row | overrides


def test_each_defect_gets_its_reason_and_good_rows_pass(lake: Lake) -> None:
    write_landing(
        lake,
        "labels",
        DAY,
        "labels.csv",
        [
            label("ok-1"),
            label("bad-malformed", confidence="very"),
            label("bad-missing", reviewer_id=""),
            label("bad-invalid", label_value="maybe"),
            label("bad-future", labeled_at="2026-01-07T00:00:00Z"),
            label("ok-1"),
            label("ok-2", labeled_at="2026-01-05T23:59:59+00:00"),
        ],
    )
    result = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["ok-1", "ok-2"]
    reasons = dict(
        zip(result.rejects["landing_row"].to_list(), result.rejects["reason_code"].to_list(), strict=True)
    )
    assert reasons == {
        2: "malformed_value",
        3: "missing_field",
        4: "invalid_value",
        5: "future_timestamp",
        6: "duplicate",
    }
    assert result.rows_read == result.valid.height + result.rejects.height
    malformed = result.rejects.filter(pl.col("landing_row") == 2).row(0, named=True)
    assert malformed["reason"] == "malformed_value: confidence='very' is not a finite number"
    assert '"confidence":"very"' in malformed["record"]
    assert malformed["landing_file"] == f"landing/labels/{DAY}/labels.csv"


def test_unparseable_file_is_quarantined_whole_and_the_day_still_loads(lake: Lake) -> None:
    write_landing(lake, "labels", DAY, "a.csv", [label("ok-1")])
    broken = write_landing(lake, "labels", DAY, "b.parquet", [label(f"x{i}") for i in range(50)])
    broken.write_bytes(broken.read_bytes()[:200])  # cut off mid-write: no Parquet reader can open it
    result = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels")
    assert result.valid["label_id"].to_list() == ["ok-1"]
    whole = result.rejects.row(0, named=True)
    assert whole["reason_code"] == "unparseable_file"
    assert whole["landing_file"].endswith("b.parquet")
    assert whole["landing_row"] is None


def test_three_formats_give_the_same_rows(lake: Lake) -> None:
    rows = [label("a"), label("b", confidence="0.5")]
    write_landing(lake, "labels", DAY, "x.csv", rows)
    write_landing(
        lake, "labels", "2026-01-06", "x.jsonl", [r | {"confidence": float(r["confidence"])} for r in rows]
    )
    typed = [
        r
        | {
            "confidence": float(r["confidence"]),
            "labeled_at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
            "comment": None,
        }
        for r in rows
    ]
    write_landing(lake, "labels", "2026-01-07", "x.parquet", typed)
    frames = [
        ingest_day(lake, "labels", date(2026, 1, d), stage="raw_labels").valid.drop("landing_file")
        for d in (5, 6, 7)
    ]
    assert frames[0].equals(frames[1])
    assert frames[0].equals(frames[2])
    assert frames[0]["labeled_at"].dtype == pl.Datetime("us", "UTC")


def test_timestamp_without_offset_is_malformed_not_guessed() -> None:
    raw = pl.DataFrame({"labeled_at": ["2026-01-05 09:30:00", "2026-01-05T09:30:00+02:00"]})
    typed, reasons = coerce(raw, "labels")
    assert typed["labeled_at"].to_list()[1] == datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    assert reasons.to_list()[0].startswith("malformed_value: labeled_at")
    assert reasons.to_list()[1] is None


def test_naive_parquet_timestamps_are_malformed(lake: Lake) -> None:
    write_landing(
        lake, "labels", DAY, "x.parquet", [label("a", confidence=0.5, labeled_at=datetime(2026, 1, 5, 9))]
    )
    result = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels")
    assert result.valid.height == 0
    assert result.rejects["reason_code"].to_list() == ["malformed_value"]


def test_missing_required_column_rejects_rows_as_missing_field(lake: Lake) -> None:
    write_landing(lake, "labels", DAY, "x.csv", [{k: v for k, v in label("a").items() if k != "reviewer_id"}])
    result = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels")
    assert result.rejects["reason"].to_list() == ["missing_field: reviewer_id is empty"]


def test_non_finite_numbers_are_malformed() -> None:
    raw = pl.DataFrame({"metric_value": ["inf", "NaN", "3"]})
    typed, reasons = coerce(raw, "outcome_signals")
    assert typed["metric_value"].to_list() == [None, None, 3.0]
    assert [r is not None for r in reasons.to_list()] == [True, True, False]


def test_optional_boolean_and_integer_columns_parse(lake: Lake) -> None:
    signal = {
        "signal_id": "s1",
        "source": "shop_pixel",
        "event_type": "conversion",
        "metric_value": "1",
        "timestamp": "2026-01-05T10:00:00Z",
        "recommendation_id": "rec-1",
        "subject_id": "u1",
        "subject_age": "31",
        "subject_country": "DE",
        "consent_analytics": "TRUE",
        "landing_url": "",
    }
    write_landing(
        lake,
        "outcome_signals",
        DAY,
        "s.csv",
        [signal, signal | {"signal_id": "s2", "consent_analytics": "maybe"}],
    )
    result = ingest_day(lake, "outcome_signals", date(2026, 1, 5), stage="raw_outcome_signals")
    assert result.valid.select("subject_age", "consent_analytics").row(0) == (31, True)
    assert result.rejects["reason"].to_list() == [
        "malformed_value: consent_analytics='maybe' is not true or false"
    ]


def test_a_day_without_files_is_empty_not_an_error(lake: Lake) -> None:
    result = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels")
    assert result.valid.height == 0 and result.rejects.height == 0 and result.files == []


@pytest.mark.parametrize("name", ["labels.csv", "labels.parquet"])
def test_batches_give_the_same_result_as_one_pass(lake: Lake, name: str) -> None:
    # a duplicate whose first copy sits in an earlier batch, and a bad row in a later one
    rows = [label(f"l{i}") for i in range(5)] + [label("l1"), label("l9", label_value="maybe")]
    write_landing(lake, "labels", DAY, name, rows)
    one = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels")
    batched = ingest_day(lake, "labels", date(2026, 1, 5), stage="raw_labels", batch_rows=2)
    assert batched.valid.equals(one.valid) and batched.rejects.equals(one.rejects)
    assert batched.rejects.select("landing_row", "reason_code").rows() == [
        (6, "duplicate"),
        (7, "invalid_value"),
    ]
