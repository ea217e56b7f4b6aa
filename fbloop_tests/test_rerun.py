"""Re-runs and backfills are pure with respect to the registry: a loop day's decision is made once.

A 14-day closed loop runs once per backend (fbloop's database on SQLite, and on PostgreSQL);
days 9-14 are then run again through the daily job, in order and out of order, and the alias
history (`fbloop weights history --json`) and every registry table must come out identical.
"""

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from fbloop_assets.cli import main
from fbloop_assets.daily_run import run_day
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.weights.decisions import Decisions
from fbloop_assets.lib.weights.registry import Registry
from fbloop_tests.conftest import ProjectRun, _fresh_database, project_env
from fbloop_tests.test_loop import LOOP_CONFIG  # scaled down: datasets from day 3, canary after 2 days

START = date(2026, 1, 1)
DAYS = 14
RERUN = [START + timedelta(days=i) for i in range(8, DAYS)]  # days 9-14
TABLES = ("weights_versions", "weights_evaluations", "alias_moves", "loop_decisions")


def _materialized(instance: dg.DagsterInstance, asset: str, day: date) -> dict[str, Any]:
    """The metadata of ``asset``'s newest materialization for ``day``: what the UI shows."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day.isoformat()]), limit=1
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


def _snapshot(run: ProjectRun) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["weights", "history", "--json"]) == 0
    engine = open_data_store(run.lake.root)
    tables: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for name in TABLES:
            table = sa.Table(name, sa.MetaData(), autoload_with=connection)
            rows = connection.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            tables[name] = [r._asdict() for r in rows]
    return {"history": json.loads(out.getvalue()), "tables": tables}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fourteen_days(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProjectRun]:
    root = tmp_path_factory.mktemp(f"rerun-{request.param}")
    env = project_env(root, LOOP_CONFIG)
    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as stack:
        if request.param == "postgres":
            # a database of its own: the session's `postgres_url` already holds other tests' loops
            env["FBLOOP_DATABASE_URL"] = stack.enter_context(_fresh_database())
        for k, v in env.items():
            mp.setenv(k, v)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["demo", "--days", str(DAYS), "--seed", "7", "--signals-per-day", "8000", "--json"])
        assert code == 0
        yield ProjectRun(root, json.loads(out.getvalue()), env)


@pytest.mark.slow
def test_a_clean_demo_leaves_no_failed_run_and_a_decision_every_day(
    fourteen_days: ProjectRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in fourteen_days.env.items():
        monkeypatch.setenv(k, v)
    instance = dg.DagsterInstance.get()
    assert instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])) == []
    days = [(START + timedelta(days=i)).isoformat() for i in range(DAYS)]
    materialized = instance.get_materialized_partitions(dg.AssetKey("production_weights"))
    assert sorted(materialized) == days
    decided = [d.day for d in Decisions.of(fourteen_days.lake).all() if d.stage == "production_weights"]
    assert decided == days


@pytest.mark.slow
def test_rerunning_finished_days_never_changes_the_registry(
    fourteen_days: ProjectRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in fourteen_days.env.items():
        monkeypatch.setenv(k, v)
    before = _snapshot(fourteen_days)
    # the re-run days must have decided something, or the comparison proves nothing
    decided = {m["day"] for m in before["history"]["moves"] if m["day"] is not None}
    assert decided & {d.isoformat() for d in RERUN}, decided
    assert len(before["tables"]["loop_decisions"]) == 2 * DAYS  # canary review and production, per day
    first = {d.day: d for d in Decisions.of(fourteen_days.lake).all() if d.stage == "production_weights"}
    instance = dg.DagsterInstance.get()
    for order in (RERUN, [RERUN[i] for i in (5, 2, 0, 4, 1, 3)]):
        for day in order:
            summary = run_day(day, instance)
            assert summary.blocked == []
            # the day's materialization says what the day decided, not what the registry says now
            decision = first[day.isoformat()]
            shown = _materialized(instance, "production_weights", day)
            assert shown["production"] == decision.after["production"]
            assert shown["reason"] == decision.reason
            assert summary.loop["production"] == decision.as_dict()
            assert summary.decision == decision.as_dict()
        assert _snapshot(fourteen_days) == before
    # the newest day's production is what production is now
    assert (
        Registry.of(fourteen_days.lake).production().version
        == first[RERUN[-1].isoformat()].after["production"]
    )
