"""The anonymized training export (`lib.dataset.export`) and its asset `feedback_export`."""

from __future__ import annotations

import importlib.util
import os
import stat
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.defs.dataset.export import feedback_export
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.dataset.export import EXPORT_COLUMNS, EXPORT_SCHEMA, ExportStats, export_training_pairs
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
SERVED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 3, 4, 5, 6, tzinfo=UTC)


def outcome(
    fid: str | None,
    rec: str | None = "rec-1",
    event_type: str = "impression",
    value: float | None = 1.0,
    **kw: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in FEEDBACK_SCHEMA}
    row |= {
        "feedback_id": fid,
        "kind": "outcome",
        "event_type": event_type,
        "value": value,
        "source": "ads",
        "recommendation_id": rec,
        "request_id": "req-1",
        "campaign_id": "cmp-1",
        "creator_id": "cr-1",
        "rank": 1,
        "score": 0.5,
        "propensity": 0.25,
        "weights_version": "w-1",
        "served_at": SERVED,
        "event_at": SERVED + timedelta(hours=1),
        "attribution_closes_at": SERVED + timedelta(days=1),
        "attribution_complete": True,
    }
    return row | kw


def label(
    fid: str, rec: str = "rec-1", useful: bool = True, confidence: float = 0.8, **kw: Any
) -> dict[str, Any]:
    row = outcome(fid, rec, "label", 1.0 if useful else 0.0, **kw)
    return row | {
        "kind": "label",
        "confidence": confidence,
        "source": "reviewer",
        "reviewer_id": "rv-7",
        "attribution_closes_at": None,
    }


def write_day(lake: Lake, day: date, rows: list[dict[str, Any]]) -> None:
    path = lake.table_path("normalized_feedback", day)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r | {"partition_date": day} for r in rows]
    pl.DataFrame(rows, schema=FEEDBACK_SCHEMA, orient="row").write_parquet(path)


def export(lake: Lake, tmp_path: Path, **kw: Any) -> ExportStats:
    args: dict[str, Any] = {
        "end_day": DAY2,
        "days_back": 2,
        "min_feedback_fields": 1,
        "fmt": "csv",
        "out_dir": tmp_path / "exports",
        "now": NOW,
    }
    return export_training_pairs(lake, **(args | kw))


def read_csv(path: Path) -> pl.DataFrame:
    schema = {c: (pl.String() if c == "served_at" else t) for c, t in EXPORT_SCHEMA.items()}
    return pl.read_csv(path, schema=schema)  # type: ignore[arg-type]


def by_rec(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["recommendation_id"]: r for r in frame.iter_rows(named=True)}


def test_signal_redelivered_on_a_later_day_counts_once(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY1, [outcome("signal:1", event_type="click", value=2.0)])
    write_day(lake, DAY2, [outcome("signal:1", event_type="click", value=5.0), outcome("signal:2")])
    stats = export(lake, tmp_path)
    pair = by_rec(read_csv(stats.file))["rec-1"]
    assert (stats.total, stats.deduplicated, stats.exported) == (3, 1, 1)
    assert pair["clicks"] == 2.0  # the earliest delivery wins
    assert pair["impressions"] == 1.0


def test_events_after_the_attribution_window_are_not_summed(lake: Lake, tmp_path: Path) -> None:
    closes = SERVED + timedelta(days=1)
    write_day(
        lake,
        DAY1,
        [
            outcome("signal:1", event_type="conversion", event_at=closes),  # on the boundary: counts
            outcome("signal:2", event_type="conversion", event_at=closes + timedelta(seconds=1)),
        ],
    )
    pair = by_rec(read_csv(export(lake, tmp_path).file))["rec-1"]
    assert pair["conversions"] == 1.0


def test_outcomes_complete_only_when_every_window_closed_by_end_day(lake: Lake, tmp_path: Path) -> None:
    end_of_day2 = datetime(2026, 3, 3, tzinfo=UTC)
    write_day(
        lake,
        DAY2,
        [
            # incomplete on its arrival day, but closed by the end of end_day
            outcome("signal:1", rec="closed", attribution_complete=False, attribution_closes_at=end_of_day2),
            outcome("signal:2", rec="open", attribution_complete=False, attribution_closes_at=end_of_day2),
            outcome(
                "signal:3",
                rec="open",
                attribution_complete=False,
                attribution_closes_at=end_of_day2 + timedelta(microseconds=1),
            ),
            label("label:1", rec="labels-only"),
        ],
    )
    pairs = by_rec(read_csv(export(lake, tmp_path).file))
    assert pairs["closed"]["outcomes_complete"] is True
    assert pairs["open"]["outcomes_complete"] is False
    assert pairs["labels-only"]["outcomes_complete"] is True  # no outcome rows: nothing open


def test_labels_are_counted_and_averaged(lake: Lake, tmp_path: Path) -> None:
    write_day(
        lake,
        DAY2,
        [
            label("label:1", useful=True, confidence=0.9),
            label("label:2", useful=False, confidence=0.5),
            outcome("signal:1", rec="unlabeled"),
        ],
    )
    pairs = by_rec(read_csv(export(lake, tmp_path).file))
    assert pairs["rec-1"]["n_labels"] == 2
    assert pairs["rec-1"]["label_useful"] == pytest.approx(0.5)
    assert pairs["rec-1"]["label_confidence"] == pytest.approx(0.7)
    assert pairs["unlabeled"]["n_labels"] == 0
    assert pairs["unlabeled"]["label_useful"] is None  # an empty cell, not 0


def test_pairs_with_too_few_feedback_fields_are_skipped(lake: Lake, tmp_path: Path) -> None:
    write_day(
        lake,
        DAY2,
        [
            outcome("signal:1", rec="thin"),
            outcome("signal:2", rec="rich"),
            outcome("signal:3", rec="rich", event_type="click"),
            label("label:1", rec="rich"),
            outcome("signal:4", rec="empty", value=0.0),
        ],
    )
    stats = export(lake, tmp_path, min_feedback_fields=2)
    assert (stats.exported, stats.skipped) == (1, 2)
    assert set(by_rec(read_csv(stats.file))) == {"rich"}
    everything = export(lake, tmp_path, min_feedback_fields=0, now=NOW + timedelta(seconds=1))
    assert (everything.exported, everything.skipped) == (3, 0)


def test_subject_level_data_is_aggregated_away_and_counted(lake: Lake, tmp_path: Path) -> None:
    write_day(
        lake,
        DAY2,
        [
            outcome("signal:1", subject_key="sk-1", age_bucket="25-34", subject_country="DE"),
            outcome("signal:2", age_bucket="35-44"),  # an age bucket alone is subject-level too
            outcome("signal:3", subject_country="FR"),  # a country alone is not counted
            outcome("signal:4", rec="skipped", subject_key="sk-2", value=0.0),
            label("label:1"),
        ],
    )
    stats = export(lake, tmp_path)
    frame = read_csv(stats.file)
    assert frame.columns == list(EXPORT_COLUMNS)
    assert not {"subject_key", "age_bucket", "subject_country", "reviewer_id"} & set(frame.columns)
    assert "sk-1" not in stats.file.read_text()
    assert stats.anonymized == 2  # rows of the skipped pair were not exported at all


def test_rows_that_cannot_be_exported_are_errors_with_reasons(lake: Lake, tmp_path: Path) -> None:
    write_day(
        lake,
        DAY2,
        [
            outcome("signal:1"),
            outcome("signal:2", rec=None),
            outcome("signal:3", rec="negative", event_type="click", value=-1.0),
            outcome("signal:4", value=None),
            outcome(None),
            outcome(None),  # two rows without an id are two errors, not a duplicate
        ],
    )
    stats = export(lake, tmp_path)
    assert (stats.total, stats.errors, stats.deduplicated, stats.exported) == (6, 5, 0, 1)
    assert stats.error_reasons == {
        "missing feedback_id": 2,
        "missing recommendation_id": 1,
        "missing value": 1,
        "negative outcome value": 1,
    }
    assert len(stats.error_samples) == 5
    assert any("signal:3: negative outcome value" in s for s in stats.error_samples)
    assert set(by_rec(read_csv(stats.file))) == {"rec-1"}  # no pair for the negative-only recommendation


def test_csv_values_with_commas_quotes_and_newlines_round_trip(lake: Lake, tmp_path: Path) -> None:
    awkward = 'Acme, "Inc."\nsecond line\r\tand é'
    write_day(lake, DAY2, [outcome("signal:1", campaign_id=awkward, weights_version="w,1")])
    stats = export(lake, tmp_path)
    assert stats.file.read_bytes().decode("utf-8")  # UTF-8
    pair = read_csv(stats.file).row(0, named=True)
    assert pair["campaign_id"] == awkward
    assert pair["weights_version"] == "w,1"
    assert pair["served_at"] == "2026-03-01T10:00:00.000000Z"  # RFC 3339, UTC


def test_parquet_export_keeps_types(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY2, [outcome("signal:1"), label("label:1")])
    stats = export(lake, tmp_path, fmt="parquet")
    frame = pl.read_parquet(stats.file)
    assert stats.file.name == "feedback_training_20260303_040506.parquet"
    assert dict(frame.schema) == EXPORT_SCHEMA
    assert frame["served_at"][0] == SERVED


def test_file_name_uses_the_utc_time_of_now(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY2, [outcome("signal:1")])
    local = datetime(2026, 3, 3, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))
    stats = export(lake, tmp_path, now=local)
    assert stats.file == tmp_path / "exports" / "feedback_training_20260302_230203.csv"


def test_export_file_is_readable_by_owner_and_group_only(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY2, [outcome("signal:1")])
    for fmt in ("csv", "parquet"):
        mode = stat.S_IMODE(os.stat(export(lake, tmp_path, fmt=fmt).file).st_mode)
        assert mode == 0o640, oct(mode)


def test_write_leaves_no_temporary_file(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY2, [outcome("signal:1")])
    stats = export(lake, tmp_path)
    assert [p.name for p in (tmp_path / "exports").iterdir()] == [stats.file.name]


def test_failed_write_leaves_neither_target_nor_temporary_file(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash half-way through writing must not leave a truncated export for readers to pick up.
    def half_written(self: pl.DataFrame, file: Path, **_: Any) -> None:
        Path(file).write_text("recommendation_id,request_id\nrec-1,")
        raise OSError("disk full")

    write_day(lake, DAY2, [outcome("signal:1")])
    monkeypatch.setattr(pl.DataFrame, "write_csv", half_written)
    with pytest.raises(OSError, match="disk full"):
        export(lake, tmp_path)
    assert list((tmp_path / "exports").iterdir()) == []


def test_missing_days_are_listed_not_an_error(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY1, [outcome("signal:1")])
    stats = export(lake, tmp_path, days_back=3)
    assert stats.days_read == ["2026-03-01"]
    assert stats.days_missing == ["2026-02-28", "2026-03-02"]


def test_no_days_at_all_writes_a_header_only_file(lake: Lake, tmp_path: Path) -> None:
    stats = export(lake, tmp_path)
    assert (stats.total, stats.exported) == (0, 0)
    assert stats.file.read_text() == ",".join(EXPORT_COLUMNS) + "\n"


def test_invalid_arguments_are_refused(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="days_back"):
        export(lake, tmp_path, days_back=0)
    with pytest.raises(ValueError, match="min_feedback_fields"):
        export(lake, tmp_path, min_feedback_fields=6)
    with pytest.raises(ValueError, match="format"):
        export(lake, tmp_path, fmt="xlsx")


def test_stats_as_dict_is_json_ready(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY2, [outcome("signal:1")])
    values = export(lake, tmp_path).as_dict()
    assert set(values) >= {"total", "exported", "deduplicated", "anonymized", "skipped", "errors", "seconds"}
    assert isinstance(values["file"], str)


def test_matches_the_row_by_row_reference_on_synthetic_feedback(lake: Lake, tmp_path: Path) -> None:
    # The benchmark's straightforward implementation is the trusted reference.
    spec = importlib.util.spec_from_file_location(
        "export_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "export_speed.py"
    )
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.write_days(lake, bench.synthetic_feedback(20_000))
    stats = export_training_pairs(lake, bench.END_DAY, 7, 3, "csv", tmp_path / "exports", NOW)
    reference = bench.export_row_by_row(lake, bench.END_DAY, 7, 3, tmp_path / "reference.csv")
    bench.assert_same_exports(stats.file, tmp_path / "reference.csv")
    assert {k: v for k, v in stats.as_dict().items() if k in reference} == reference
    assert stats.deduplicated > 0 and stats.errors > 0 and stats.skipped > 0 and stats.anonymized > 0


def test_feedback_export_asset_materializes_with_metadata(lake: Lake) -> None:
    write_day(lake, DAY1, [outcome("signal:1", subject_key="sk-1")])
    write_day(lake, DAY2, [outcome("signal:1"), outcome("signal:2", rec=None), label("label:1")])
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [feedback_export],
            resources={"fbloop": FbloopResource()},
            partition_key=DAY2.isoformat(),
            instance=instance,
            run_config={"ops": {"feedback_export": {"config": {"days_back": 3, "format": "parquet"}}}},
        )
    assert result.success
    metadata = result.asset_materializations_for_node("feedback_export")[0].metadata
    values = {k: getattr(v, "value", v) for k, v in metadata.items()}
    assert values["dagster/row_count"] == 1
    assert (values["total"], values["exported"], values["deduplicated"], values["errors"]) == (4, 1, 1, 1)
    assert values["anonymized"] == 1
    assert values["days_read"] == ["2026-03-01", "2026-03-02"]
    assert values["days_missing"] == ["2026-02-28"]
    assert values["error_reasons"] == {"missing recommendation_id": 1}
    path = Path(str(values["path"]))
    assert path.parent == lake.root / "exports" and path.suffix == ".parquet" and path.exists()
    assert {"skipped", "seconds", "file", "error_samples", "format", "min_feedback_fields"} <= set(values)
