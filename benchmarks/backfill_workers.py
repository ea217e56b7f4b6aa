"""Benchmark: the wall time of an N-day backfill of the daily job on 1 and on 2 Celery workers.

For each worker count it simulates the same days into a fresh data directory, starts that many
`fbloop worker` processes (one pool process each), `dagster-daemon run` and a `dagster job
backfill` on a fresh PostgreSQL database with the `deploy/celery/` instance, and times from the
backfill's submission to its last run's end. Needs the local RabbitMQ and PostgreSQL.

    python benchmarks/backfill_workers.py                 # 14 days
    python benchmarks/backfill_workers.py --days 3 --signals-per-day 2000

The runs of one backfill start one at a time (`deploy/celery/dagster.yaml`: a day's registry
decision follows the previous day's), so two workers can only share the steps of one day that do
not depend on each other (the five ingestions, the per-day aggregates).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fbloop_assets.simulate import simulate  # noqa: E402
from fbloop_tests.distributed import celery_stack, wait_for_runs  # noqa: E402

START = date(2026, 1, 1)
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
KEY = "benchmark-key-not-secret-0123456789"


def _database() -> str:
    name = f"celery_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return name


def _drop(name: str) -> None:
    admin = psycopg2.connect(ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def measure(workers: int, days: list[str], signals: int, root: Path) -> float:
    """Seconds from the backfill's submission to the end of its last run, on ``workers`` workers."""
    data = root / "data"
    simulate(data, days=len(days), seed=7, start=START, signals_per_day=signals)
    name = _database()
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        with celery_stack(root, url, data, {"FBLOOP_PSEUDONYM_KEY": KEY}) as stack:
            for i in range(workers):
                stack.start_worker(f"w{i + 1}")
            stack.start_daemon()
            stack.wait_ready()
            started = time.perf_counter()
            stack.backfill(days)
            with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as inst:
                runs = wait_for_runs(inst, len(days), timeout=6 * 3600)
                seconds = time.perf_counter() - started
                failed = [
                    r.tags.get("dagster/partition") for r in runs if r.status != dg.DagsterRunStatus.SUCCESS
                ]
            if failed:
                raise RuntimeError(f"runs failed for {failed}; logs under {root}")
            return seconds
    finally:
        _drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--signals-per-day", type=int, default=20_000)
    args = parser.parse_args()
    days = [(START + timedelta(days=i)).isoformat() for i in range(args.days)]
    root = Path(tempfile.mkdtemp(prefix="fbloop-backfill-"))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results = {}
    for workers in (1, 2):
        results[workers] = measure(workers, days, args.signals_per_day, root / f"{workers}-workers")
        print(f"{args.days}-day backfill on {workers} worker(s): {results[workers]:.1f} s", flush=True)
    shutil.rmtree(root, ignore_errors=True)  # kept only when a run failed, for its logs
    load = os.getloadavg()[0]
    print(f"speed-up with 2 workers: {results[1] / results[2]:.2f}x (load average {load:.2f} at end)")


if __name__ == "__main__":
    main()
