"""The distributed deployment on this machine, for tests and benchmarks: `fbloop worker`
processes on the local RabbitMQ, `dagster-daemon run` and a `dagster job backfill` on the
PostgreSQL instance of `deploy/celery/`, each step on a Celery worker.

Every stack gets its own Celery queue (``$FBLOOP_CELERY_QUEUE``), so two stacks on one broker
never take each other's steps.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

PROJECT = Path(__file__).resolve().parents[1]
BROKER = ("127.0.0.1", 5672)
JOB = "daily_feedback_loop"


def broker_reachable() -> str | None:
    """None when the local RabbitMQ answers, else why not."""
    try:
        with socket.create_connection(BROKER, timeout=3):
            return None
    except OSError as exc:
        return f"RabbitMQ at {BROKER[0]}:{BROKER[1]} unreachable: {exc}"


@dataclass
class Stack:
    """A running daemon and workers; ``env`` is what every process of it shares."""

    root: Path
    env: dict[str, str]
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    daemon: subprocess.Popen | None = None

    def start_worker(self, name: str, concurrency: int = 1) -> None:
        log = (self.root / f"worker-{name}.log").open("w")
        command = [sys.executable, "-m", "fbloop_assets.cli", "worker", "--name", name]
        self.workers[name] = subprocess.Popen(
            [*command, "--concurrency", str(concurrency)],
            env=self.env,
            cwd=PROJECT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 180) -> None:
        """Until every worker says it is ready (its log's "ready." line)."""
        deadline = time.monotonic() + timeout
        for name, process in self.workers.items():
            log = self.root / f"worker-{name}.log"
            while " ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)

    def start_daemon(self) -> None:
        log = (self.root / "daemon.log").open("w")
        self.daemon = subprocess.Popen(
            ["dagster-daemon", "run", "-w", str(PROJECT / "workspace.yaml")],
            env=self.env,
            cwd=PROJECT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def backfill(self, days: list[str]) -> None:
        """Submit a backfill of the daily job for ``days`` (the daemon's queue launches its runs)."""
        subprocess.run(
            ["dagster", "job", "backfill", "-w", str(PROJECT / "workspace.yaml"), "-j", JOB]
            + ["--partitions", ",".join(days), "--noprompt"],
            env=self.env,
            cwd=PROJECT,
            check=True,
            capture_output=True,
        )

    def worker_children(self) -> dict[int, str]:
        """The pool processes of every worker: pid -> worker name (from each process's parent)."""
        parents = {p.pid: name for name, p in self.workers.items()}
        children: dict[int, str] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid in parents:
                children[int(stat.parent.name)] = parents[ppid]
        return children

    def stop(self) -> None:
        for process in [*self.workers.values(), *([self.daemon] if self.daemon else [])]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), *([self.daemon] if self.daemon else [])]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def celery_stack(root: Path, postgres_url: str, data_dir: Path, extra_env: dict[str, str]) -> Iterator[Stack]:
    """A Dagster home from `deploy/celery/` under ``root`` with its environment; stopped on exit."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT / "deploy" / "celery" / "dagster.yaml", home / "dagster.yaml")
    env = os.environ | extra_env
    env |= {
        "DAGSTER_HOME": str(home),
        "FBLOOP_PG_URL": postgres_url,
        "FBLOOP_EXECUTOR": "celery",
        "FBLOOP_CELERY_QUEUE": f"fbloop-test-{uuid.uuid4().hex[:8]}",
        "FBLOOP_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH")) if p),
    }
    stack = Stack(root=root, env=env)
    try:
        yield stack
    finally:
        stack.stop()


def wait_for_runs(instance: dg.DagsterInstance, count: int, timeout: float) -> Sequence[dg.DagsterRun]:
    """The job's runs once ``count`` of them have finished; raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB))
        if len(runs) >= count and all(r.is_finished for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"{[(r.tags.get('dagster/partition'), r.status) for r in runs]}")
        time.sleep(2)
