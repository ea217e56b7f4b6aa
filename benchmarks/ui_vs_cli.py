"""A day launched from the Dagster UI against `fbloop run` of the same day, and a 14-day backfill.

Simulates a world, starts `dagster-webserver` and `dagster-daemon` on a fresh SQLite instance
and sends what the UI sends: a job backfill of every day (Jobs → daily_feedback_loop →
Backfill), timed from the request until its last run finished; then the last day once more
through the launchpad (GraphQL `launchRun`), timed from the request until the run succeeded,
against `fbloop run --date` of that day in a fresh process (imports included, as a user waits
for both). The goal (issue 16.4): the UI's day at most 1.3x the command line's.

    python benchmarks/ui_vs_cli.py --days 14 --signals-per-day 5000 --port 8652
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from fbloop_tests.dagster_ui import dagster_ui  # noqa: E402

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def _fbloop(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fbloop_assets.cli", *args],
        env={**os.environ, **env, "PYTHONPATH": str(PROJECT)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--signals-per-day", type=int, default=5000)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--port", type=int, default=8652)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fbloop-ui-bench-"))
    try:
        (root / "home").mkdir()
        shutil.copy(PROJECT / "dagster.yaml", root / "home" / "dagster.yaml")
        env = {
            "DAGSTER_HOME": str(root / "home"),
            "FBLOOP_DATA_DIR": str(root / "data"),
            "FBLOOP_PSEUDONYM_KEY": KEY,
            "FBLOOP_CONFIG": str(PROJECT / "fbloop.toml"),
        }
        days = [(args.start + timedelta(days=i)).isoformat() for i in range(args.days)]
        simulate = ["simulate", "--days", str(args.days), "--seed", "7", "--start", days[0]]
        _fbloop(env, *simulate, "--signals-per-day", str(args.signals_per_day))
        load = os.getloadavg()[0]
        with dagster_ui(env, args.port, root / "ui") as ui:
            started = time.perf_counter()
            backfill = ui.launch_job_backfill("daily_feedback_loop", days)
            status = ui.wait_backfill(backfill, timeout=7200)
            backfill_s = time.perf_counter() - started
            runs = ui.runs(backfill=backfill)
            failed = sum(r["status"] != "SUCCESS" for r in runs)
            started = time.perf_counter()
            run_id = ui.launch_run("daily_feedback_loop", days[-1])
            (run,) = ui.wait_runs([run_id], timeout=1800)
            ui_s = time.perf_counter() - started
            assert run["status"] == "SUCCESS", run
            in_run_s = run["endTime"] - run["startTime"]
        cli_s = _fbloop(env, "run", "--date", days[-1])
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start; SQLite instance")
        print(f"world: {args.days} days from {days[0]}, {args.signals_per_day:,} signals a day, seed 7")
        print(
            f"job backfill of {len(days)} days: {backfill_s:.1f} s ({status}, {len(runs)} runs, "
            f"{failed} not successful), {backfill_s / len(days):.1f} s a day"
        )
        print(
            f"UI launchRun of {days[-1]}: {ui_s:.1f} s from request to success ({in_run_s:.1f} s in the run)"
        )
        print(f"fbloop run --date {days[-1]}: {cli_s:.1f} s in a fresh process")
        print(f"ratio UI / CLI: {ui_s / cli_s:.2f}x (goal <= 1.3x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
