"""`fbloop worker`: a dagster-celery worker for the distributed deployment (`deploy/celery/`)."""

from __future__ import annotations

import argparse
import os
import socket

from fbloop_assets.cli.common import positive, progress


def cmd_worker(args: argparse.Namespace) -> None:
    from fbloop_assets.daily_run import ensure_dagster_home
    from fbloop_assets.defs.executors import celery_broker
    from fbloop_assets.defs.workers import run_worker

    ensure_dagster_home()
    name = args.name or f"fbloop-{socket.gethostname()}-{os.getpid()}"
    progress(f"worker {name}: {args.concurrency} process(es) on {celery_broker().split('@')[-1]}")
    run_worker(args.concurrency, name)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="run a dagster-celery worker that executes the steps of runs on the Celery executor",
        description=(
            "Takes step tasks from the broker ($FBLOOP_CELERY_BROKER, default the local RabbitMQ) and "
            "runs them against $DAGSTER_HOME's instance and $FBLOOP_DATA_DIR, until stopped."
        ),
    )
    p.add_argument("--concurrency", type=positive, default=1, help="steps run at once (processes)")
    p.add_argument("--name", help="worker name (default fbloop-HOST-PID)")
    p.set_defaults(func=cmd_worker)
