"""Backfills and runs launched the way the Dagster UI launches them (issues 16.2 and 14.6).

A real `dagster-webserver` and `dagster-daemon` on a temporary instance; the GraphQL requests of
"Materialize all" → backfill on the asset graph and of the launchpad. Found in the field: a
3-day asset backfill targeted 16 to 43 partitions of each asset (window partition mappings and a
self-dependency pulled later days in) and took 20 runs; two runs of one day could overlap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from fbloop_assets.cli import main
from fbloop_assets.definitions import defs
from fbloop_tests.conftest import project_env
from fbloop_tests.dagster_ui import PROJECT, DagsterUI, dagster_ui

DAYS = ["2026-01-12", "2026-01-13", "2026-01-14"]
# Guards only report here: whether a day whose candidate is not promoted is a green run is
# issue 16.3's; this test is about which partitions run, in which runs.
CONFIG = "[guards]\nenabled = false\n"
PORTS = {"sqlite": 8650, "postgres": 8651}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = project_env(tmp_path, CONFIG)
    if request.param == "postgres":
        shutil.copy(
            PROJECT / "deploy" / "postgres" / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml"
        )
        env["FBLOOP_PG_URL"] = request.getfixturevalue("fresh_postgres_url")
    env["UI_PORT"] = str(PORTS[request.param])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert (
        main(["simulate", "--days", "3", "--seed", "3", "--start", DAYS[0], "--signals-per-day", "2000"]) == 0
    )
    return env


def _materialized(instance: dg.DagsterInstance, asset: str) -> list[tuple[str | None, str]]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=1000)
    return sorted((r.partition_key, r.run_id) for r in records.records)


def _runs_in_order(runs: list[dict]) -> list[dict]:
    ordered = sorted(runs, key=lambda r: r["startTime"])
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert before["endTime"] <= after["startTime"], "two runs overlapped"
    return ordered


def _second_run_of_a_day_waits(ui: DagsterUI, env: dict[str, str]) -> None:
    """Two launches of one day: the second waits in the queue; `fbloop run` of it is refused."""
    first = ui.launch_run("daily_feedback_loop", DAYS[-1])
    second = ui.launch_run("daily_feedback_loop", DAYS[-1])
    deadline = time.monotonic() + 600
    while (status := ui.runs(run_ids=[first])[0]["status"]) in ("QUEUED", "NOT_STARTED", "STARTING"):
        assert time.monotonic() < deadline, "the first run never started"
        time.sleep(0.5)
    assert status == "STARTED"
    cli = subprocess.run(
        [sys.executable, "-m", "fbloop_assets.cli", "run", "--date", DAYS[-1]],
        env={**os.environ, **env, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 1
    refusal = cli.stderr.strip().splitlines()[-1]
    assert refusal.startswith(f"fbloop: error: partition {DAYS[-1]} is already running: run "), refusal
    assert refusal.split(": run ")[1].split()[0] in (first, second)
    runs = ui.wait_runs([first, second], timeout=900)
    assert [r["runId"] for r in _runs_in_order(runs)] == [first, second]
    assert {r["status"] for r in runs} == {"SUCCESS"}


@pytest.mark.slow
def test_an_asset_backfill_of_three_days_runs_exactly_those_days(
    project: dict[str, str], tmp_path: Path
) -> None:
    assets = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
    with dagster_ui(project, int(project["UI_PORT"]), tmp_path / "ui") as ui:
        backfill = ui.launch_backfill(assets, DAYS)
        assert ui.wait_backfill(backfill, timeout=1800) == "COMPLETED_SUCCESS"
        runs = _runs_in_order(ui.runs(backfill=backfill))
        # one run per day, oldest first (each day reads the days before it as data), all green
        assert [r["tags"]["dagster/partition"] for r in runs] == DAYS
        assert [r["status"] for r in runs] == ["SUCCESS"] * 3
        _second_run_of_a_day_waits(ui, project)
    run_of_day = {r["tags"]["dagster/partition"]: r["runId"] for r in runs}
    with dg.DagsterInstance.get() as instance:
        for asset in assets:
            backfilled = [m for m in _materialized(instance, asset) if m[1] in run_of_day.values()]
            # every asset, exactly the three days, each in the run of its day; nothing else
            assert backfilled == sorted(run_of_day.items()), asset
            later = {p for p, _ in _materialized(instance, asset)} - set(DAYS)
            assert not later, (asset, later)
