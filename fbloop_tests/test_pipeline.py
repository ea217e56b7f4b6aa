"""The daily job end to end on a real Dagster instance, SQLite and PostgreSQL, on the tiny world."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.daily_run import RunFailed, run_day
from fbloop_assets.lib.common.lake import Lake
from fbloop_tests.tiny_world import DAY, write_tiny_day

EXPECTED_READ = {
    "creators": 2,
    "campaigns": 1,
    "raw_recommendations": 3,
    "raw_outcome_signals": 6,
    "raw_labels": 3,
}


def check_tiny_day(summary_dict: dict, lake: Lake) -> None:
    assert summary_dict["rows_read"] == EXPECTED_READ
    assert summary_dict["quarantined"] == {
        "total": 3,
        "duplicate": 1,
        "malformed_value": 1,
        "unknown_recommendation": 1,
    }
    assert summary_dict["feedback"] == {
        "normalized": 5,
        "excluded_no_consent": 1,
        "incomplete": 3,
        "unknown_recommendation": 1,
        "deduplicated": 0,
    }
    # one day of data is no evidence: nothing to fit, the guards that need data warn, production stays
    assert summary_dict["checks"] == {
        "no_personal_data": "passed",
        "expectations": "passed",
        "label_quality": "warned",  # three labels: agreement not measurable
        "outcome_anomalies": "passed",
        "evidence": "warned",
        "completeness": "passed",
        "drift": "passed",
        "privacy": "passed",
        "step_size": "passed",
        "no_regression": "warned",
        "exposure": "warned",
    }
    assert summary_dict["blocked"] == []
    assert summary_dict["loop"]["production"]["after"]["production"] == "w0"
    assert summary_dict["loop"]["production"]["promoted"] is False
    quarantine = pl.read_parquet(lake.table_path("quarantine", date.fromisoformat(DAY)))
    assert quarantine.select("source", "landing_row", "reason_code").rows() == [
        ("labels", 3, "duplicate"),
        ("outcome_signals", 3, "malformed_value"),
        ("outcome_signals", 4, "unknown_recommendation"),
    ]


def test_daily_job_on_sqlite(lake: Lake) -> None:
    write_tiny_day(lake)
    with dg.instance_for_test() as instance:
        summary = run_day(date.fromisoformat(DAY), instance)
        check_tiny_day(summary.as_dict(), lake)
        record = instance.get_latest_materialization_event(dg.AssetKey("normalized_feedback"))
        assert record is not None and record.asset_materialization.partition == DAY


def test_rerunning_a_partition_is_idempotent(lake: Lake) -> None:
    write_tiny_day(lake)
    day = date.fromisoformat(DAY)
    with dg.instance_for_test() as instance:
        run_day(day, instance)
        first = {a: pl.read_parquet(lake.table_path(a, day)) for a in ("normalized_feedback", "quarantine")}
        run_day(day, instance)
        for asset, frame in first.items():
            assert pl.read_parquet(lake.table_path(asset, day)).equals(frame), asset
        versions = [
            e.asset_materialization.tags.get("dagster/data_version")
            for e in instance.fetch_materializations(dg.AssetKey("normalized_feedback"), limit=2).records
        ]
        assert len(versions) == 2 and versions[0] == versions[1]


def test_no_temporary_files_are_left_behind(lake: Lake) -> None:
    write_tiny_day(lake)
    with dg.instance_for_test() as instance:
        run_day(date.fromisoformat(DAY), instance)
    assert not [p for p in Path(lake.root).rglob("*.tmp")]


@pytest.mark.postgres
def test_daily_job_on_postgres(lake: Lake, postgres_url: str) -> None:
    write_tiny_day(lake)
    overrides = {"storage": {"postgres": {"postgres_url": postgres_url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert "Postgres" in type(instance.run_storage).__name__
        summary = run_day(date.fromisoformat(DAY), instance)
        check_tiny_day(summary.as_dict(), lake)
        run = instance.get_run_by_id(summary.run_id)
        assert run is not None and run.is_success


def test_a_failing_step_is_reported_by_its_root_cause(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_day(lake)
    bad = tmp_path / "bad.toml"
    bad.write_text("[privacy]\nmode = 'everything'\n")
    monkeypatch.setenv("FBLOOP_CONFIG", str(bad))
    with (
        dg.instance_for_test() as instance,
        pytest.raises(RunFailed, match="raw_outcome_signals: .*privacy.mode"),
    ):
        run_day(date.fromisoformat(DAY), instance)
