"""Several processes opening one fresh store at once (two Celery workers, the webserver and the daemon
starting together) migrate it exactly once: SQLite's BEGIN IMMEDIATE and PostgreSQL's advisory lock
serialize the migration, so no process sees a half-made schema or fails on a table another just made."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import sqlalchemy as sa

from fbloop_assets.lib.common.store import open_store

PROCESSES = 4


def _open(url: str, start: Barrier) -> None:
    start.wait()
    engine = open_store(url)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT count(*) FROM exports")).scalar_one()


def _migrate_at_once(url: str) -> list[int | None]:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each, as separate workers are
    start = context.Barrier(PROCESSES)
    workers = [context.Process(target=_open, args=(url, start)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return [worker.exitcode for worker in workers]


def _heads(url: str) -> set[str]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        heads = {row[0] for row in connection.execute(sa.text("SELECT version_num FROM alembic_version"))}
    engine.dispose()
    return heads


def test_processes_migrating_one_fresh_sqlite_store_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fbloop.sqlite'}"
    assert _migrate_at_once(url) == [0] * PROCESSES
    assert _heads(url) == _heads_after_one_migration(tmp_path)


def test_processes_migrating_one_fresh_postgres_store_at_once_all_succeed(fresh_postgres_url: str) -> None:
    assert _migrate_at_once(fresh_postgres_url) == [0] * PROCESSES


def _heads_after_one_migration(tmp_path: Path) -> set[str]:
    url = f"sqlite:///{tmp_path / 'reference.sqlite'}"
    open_store(url)
    return _heads(url)
