"""Benchmark: the wall time of an N-day backfill of the daily job on 1 and on 2 Celery workers.

For each worker count it simulates the same days into a fresh data directory, starts that many
`fbloop worker` processes (one pool process each), `dagster-daemon run` and a `dagster job
backfill` on a fresh PostgreSQL database with the `deploy/celery/` instance, and times from the
backfill's submission to its last run's end. Needs the local RabbitMQ and PostgreSQL.

Beside each time it prints where the machine's CPU went meanwhile (/proc): the workers, Dagster's
daemon with its code server and run processes, PostgreSQL, and the rest (the broker, the backfill
command, this script), and at the end the best speed-up the cores could give for the CPU the
2-worker backfill used: one worker's time x cores / that CPU.

    python benchmarks/backfill_workers.py                 # 14 days
    python benchmarks/backfill_workers.py --days 3 --signals-per-day 2000

The queue starts up to four of the backfill's runs at once (`deploy/celery/dagster.yaml`); a step
that reads an earlier day waits until that day is written (`fbloop_assets/defs/ordering.py`), so
the days' ingestion and normalization share the workers while the registry decides day by day.
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
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot (every core, /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # all but idle and iowait


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(c) for c in children.read().split()]
    except OSError:
        return []


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``, its reaped children and its live descendants."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS  # utime, stime, cutime, cstime
    return own + sum(_tree_cpu(child) for child in _children(pid))


def _postmaster() -> int | None:
    """The PostgreSQL server's main process (every backend is its child), if it runs here."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm, rest = stat.read_text().split(" (", 1)[1].split(")", 1)
        except (OSError, IndexError, ValueError):
            continue
        parent = Path(f"/proc/{rest.split()[1]}/comm")
        if comm == "postgres" and (not parent.exists() or parent.read_text().strip() != "postgres"):
            return int(stat.parent.name)
    return None


def measure(workers: int, days: list[str], signals: int, root: Path) -> dict[str, float]:
    """Seconds from the backfill's submission to the end of its last run, on ``workers`` workers,
    and the CPU seconds the machine, the workers, Dagster (daemon, code server, run processes)
    and PostgreSQL spent meanwhile."""
    data = root / "data"
    simulate(data, days=len(days), seed=7, start=START, signals_per_day=signals)
    name = _database()
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    postmaster = _postmaster()
    try:
        with celery_stack(root, url, data, {"FBLOOP_PSEUDONYM_KEY": KEY}) as stack:
            for i in range(workers):
                stack.start_worker(f"w{i + 1}")
            stack.start_daemon()
            stack.wait_ready()
            assert stack.daemon is not None
            before = {
                "machine": _machine_busy(),
                "workers": sum(_tree_cpu(w.pid) for w in stack.workers.values()),
                "dagster": _tree_cpu(stack.daemon.pid),
                "postgres": _tree_cpu(postmaster) if postmaster else 0.0,
            }
            started = time.perf_counter()
            stack.backfill(days)
            with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as inst:
                runs = wait_for_runs(inst, len(days), timeout=6 * 3600)
                seconds = time.perf_counter() - started
                failed = [
                    r.tags.get("dagster/partition") for r in runs if r.status != dg.DagsterRunStatus.SUCCESS
                ]
            after = {
                "machine": _machine_busy(),
                "workers": sum(_tree_cpu(w.pid) for w in stack.workers.values()),
                "dagster": _tree_cpu(stack.daemon.pid),
                "postgres": _tree_cpu(postmaster) if postmaster else 0.0,
            }
            if failed:
                raise RuntimeError(f"runs failed for {failed}; logs under {root}")
            return {"seconds": seconds} | {k: after[k] - before[k] for k in before}
    finally:
        _drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--signals-per-day", type=int, default=20_000)
    args = parser.parse_args()
    days = [(START + timedelta(days=i)).isoformat() for i in range(args.days)]
    root = Path(tempfile.mkdtemp(prefix="fbloop-backfill-"))
    cores = os.cpu_count() or 1
    print(f"machine: {cores} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results: dict[int, dict[str, float]] = {}
    for workers in (1, 2):
        r = results[workers] = measure(workers, days, args.signals_per_day, root / f"{workers}-workers")
        rest = r["machine"] - r["workers"] - r["dagster"] - r["postgres"]
        print(
            f"{args.days}-day backfill on {workers} worker(s): {r['seconds']:.1f} s; CPU busy "
            f"{r['machine']:.0f} s ({r['machine'] / (cores * r['seconds']):.0%} of {cores} cores): "
            f"workers {r['workers']:.0f} s, Dagster's daemon and run processes {r['dagster']:.0f} s, "
            f"PostgreSQL {r['postgres']:.0f} s, the rest {rest:.0f} s",
            flush=True,
        )
    shutil.rmtree(root, ignore_errors=True)  # kept only when a run failed, for its logs
    load = os.getloadavg()[0]
    speedup = results[1]["seconds"] / results[2]["seconds"]
    print(f"speed-up with 2 workers: {speedup:.2f}x (load average {load:.2f} at end)")
    # the cores can do no better than the CPU the 2-worker backfill needed, spread over all of them
    bound = results[1]["seconds"] * cores / results[2]["machine"]
    print(f"the most {cores} cores could give for that CPU: {bound:.2f}x")


if __name__ == "__main__":
    main()
