"""The daily loop on Dagster's Celery executor: two `fbloop worker` processes on the local
RabbitMQ, a 3-day backfill on the PostgreSQL instance of `deploy/celery/`, compared with the same
days run on the embedded default (in process, SQLite)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.daily_run import run_day
from fbloop_assets.lib.common.lake import Lake, frame_fingerprint
from fbloop_assets.lib.weights.registry import Registry
from fbloop_assets.simulate import simulate
from fbloop_tests.distributed import broker_reachable, celery_stack, wait_for_runs

START = date(2026, 1, 1)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(3)]


@pytest.fixture
def broker() -> None:
    problem = broker_reachable()
    if problem and os.environ.get("FBLOOP_REQUIRE_PG") == "1":
        pytest.fail(f"RabbitMQ is required (FBLOOP_REQUIRE_PG=1): {problem}")
    if problem:
        pytest.skip(problem)


def warehouse(lake: Lake) -> dict[str, str]:
    """Every Parquet table the loop wrote (warehouse, rejects, datasets): path -> row hash."""
    tables = {}
    for folder in ("warehouse", "rejects", "datasets"):
        for path in sorted((lake.root / folder).rglob("*.parquet")):
            tables[lake.relative(path)] = frame_fingerprint(pl.scan_parquet(path))
    return tables


def registry(lake: Lake) -> tuple[list[tuple], list[tuple]]:
    """The registry's versions and alias history, without the wall-clock times of their writing."""
    reg = Registry.of(lake)
    versions = sorted(
        (v.version, v.parent, v.dataset_version, tuple(sorted(v.weights.items()))) for v in reg.versions()
    )
    moves = [(m.alias, m.day, m.effective_day, m.from_version, m.to_version, m.reason) for m in reg.history()]
    return versions, moves


def data_versions(instance: dg.DagsterInstance) -> dict[tuple[str, str | None], str | None]:
    """Each asset partition's latest data version on ``instance``."""
    found: dict[tuple[str, str | None], str | None] = {}
    for key in instance.get_asset_keys():
        for record in instance.fetch_materializations(key, limit=100).records:
            mat = record.asset_materialization
            assert mat is not None
            found.setdefault(
                (key.to_user_string(), mat.partition), (mat.tags or {}).get("dagster/data_version")
            )
    return found


def _materialized_at(instance: dg.DagsterInstance, asset: str, day: str) -> float:
    """When ``asset``'s latest materialization of ``day`` was logged."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1
    ).records
    assert records, (asset, day)
    return records[0].timestamp


@pytest.mark.slow
@pytest.mark.postgres
def test_a_backfill_on_celery_workers_equals_the_embedded_default(
    broker: None, fresh_postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    celery_lake, embedded_lake = Lake(tmp_path / "celery" / "data"), Lake(tmp_path / "embedded" / "data")
    for lake in (celery_lake, embedded_lake):
        simulate(lake.root, days=len(DAYS), seed=11, start=START, signals_per_day=1500)

    monkeypatch.setenv("FBLOOP_DATA_DIR", str(embedded_lake.root))
    with dg.instance_for_test() as embedded:
        for day in DAYS:
            run_day(date.fromisoformat(day), embedded)
        embedded_versions = data_versions(embedded)

    key = {"FBLOOP_PSEUDONYM_KEY": os.environ["FBLOOP_PSEUDONYM_KEY"]}
    with celery_stack(tmp_path / "celery", fresh_postgres_url, celery_lake.root, key) as stack:
        stack.start_worker("a")
        stack.start_worker("b")
        stack.start_daemon()
        stack.wait_ready()
        stack.backfill(DAYS)
        pg = {"storage": {"postgres": {"postgres_url": fresh_postgres_url}}}
        with dg.instance_for_test(overrides=pg) as instance:
            runs = wait_for_runs(instance, len(DAYS), timeout=1500)
            assert sorted(r.tags["dagster/partition"] for r in runs) == DAYS
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
            pool = stack.worker_children()
            ran_in: set[str] = set()
            for run in runs:
                starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
                assert len(starts) > 10
                for entry in starts:
                    assert entry.dagster_event is not None
                    # each step started in a pool process of one of the two workers
                    assert entry.dagster_event.pid in pool, (entry.step_key, entry.dagster_event.pid, pool)
                    ran_in.add(pool[entry.dagster_event.pid])
            assert ran_in == {"a", "b"}
            # the days ran side by side, and each day's registry steps read the registry only once
            # the day before had decided: they were materialized after its decision (without the
            # wait, the next day's candidate was done before the decision)
            spans = sorted((r.start_time, r.end_time) for r in instance.get_run_records())
            assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), spans
            for run in runs:
                day = date.fromisoformat(run.tags["dagster/partition"])
                before = (day - timedelta(days=1)).isoformat()
                if before not in DAYS:
                    continue
                for step in ("production_weights", "candidate_weights", "canary_review"):
                    assert _materialized_at(instance, "production_weights", before) < _materialized_at(
                        instance, step, day.isoformat()
                    ), (step, day)
            celery_versions = data_versions(instance)

    assert warehouse(celery_lake) == warehouse(embedded_lake)
    assert registry(celery_lake) == registry(embedded_lake)
    assert celery_versions == embedded_versions
    # not an empty comparison: every day's tables and the registry's decision of every day are in it
    assert len(warehouse(celery_lake)) > 15 * len(DAYS)
    assert all(("production_weights", day) in celery_versions for day in DAYS)
