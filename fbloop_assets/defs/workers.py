"""The dagster-celery worker of the distributed deployment, built with the project's configuration.

A worker takes step tasks from its queue and runs each step in one of its processes against the
run's Dagster instance (PostgreSQL) and the shared data directory. It reads
``$FBLOOP_CELERY_BROKER``, ``$FBLOOP_CELERY_BACKEND`` and ``$FBLOOP_CELERY_QUEUE`` as the executor
does (`defs/executors.py`), so runs and workers always meet on the same queue.
"""

from __future__ import annotations

from typing import Any

from fbloop_assets.defs.executors import celery_backend, celery_broker, celery_queue


def celery_app() -> Any:  # celery.Celery
    """dagster-celery's app with its step task, on the configured broker, listening on our queue."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task
    from kombu import Queue

    queue = celery_queue()
    settings = CeleryExecutor.for_cli(
        broker=celery_broker(),
        backend=celery_backend(),
        include=["fbloop_assets.definitions"],
        config_source={"task_default_queue": queue},
    )
    app = make_app(settings.app_args())
    # the same declaration as dagster-celery's own queue, under the configured name
    app.conf.task_queues = [Queue(queue, routing_key=f"{queue}.#", queue_arguments={"x-max-priority": 10})]
    create_task(app)
    return app


def worker_argv(concurrency: int, name: str) -> list[str]:
    """Celery's worker arguments: one task at a time per process (steps are long and uneven)."""
    return [
        "worker",
        f"--concurrency={concurrency}",
        "--prefetch-multiplier=1",
        f"--queues={celery_queue()}",
        f"--hostname={name}@%h",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]


def run_worker(concurrency: int, name: str) -> None:
    """Run a worker in this process until it is stopped (SIGTERM: finish the running steps)."""
    celery_app().worker_main(worker_argv(concurrency, name))
