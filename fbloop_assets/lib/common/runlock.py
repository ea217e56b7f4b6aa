"""One run of a partition day at a time: a lock held while a run of that day executes here.

`fbloop run` (and `fbloop demo`, held-back releases) execute the daily job in their own
process, outside Dagster's run queue, so the queue's per-partition limit (dagster.yaml) cannot
stop two of them from writing the same day at once. This lock does. On PostgreSQL it is a
session advisory lock on a connection kept for the run; on the embedded SQLite store an
exclusive ``flock`` on a file beside the database. The server or the operating system releases
either one when the process ends, so a killed run never leaves a day locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import sqlalchemy as sa

# The first key of PostgreSQL's two-key advisory locks: fbloop's partition runs (the second key
# is the day's ordinal), apart from the single-key locks of migrations and the registry.
_PG_NAMESPACE = 7723100


class PartitionBusy(RuntimeError):
    """Another run of the same partition day holds its lock."""


def _busy(day: date) -> PartitionBusy:
    return PartitionBusy(
        f"partition {day.isoformat()} is already running (another fbloop run of that day holds its "
        "lock); wait for it to finish"
    )


@contextmanager
def _pg_lock(engine: sa.Engine, day: date) -> Iterator[None]:
    with engine.connect() as connection:
        got = connection.execute(sa.select(sa.func.pg_try_advisory_lock(_PG_NAMESPACE, day.toordinal())))
        connection.commit()
        if not got.scalar_one():
            raise _busy(day)
        try:
            yield
        finally:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(_PG_NAMESPACE, day.toordinal())))
            connection.commit()


@contextmanager
def _file_lock(folder: Path, day: date) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / f"run-{day.isoformat()}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(day) from None
        yield
    finally:
        os.close(descriptor)  # closing releases the flock


@contextmanager
def partition_lock(engine: sa.Engine, day: date) -> Iterator[None]:
    """Hold ``day``'s run lock in fbloop's database, or raise `PartitionBusy` at once."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, day):
            yield
    else:
        database = engine.url.database
        folder = Path(database).parent / "locks" if database else Path.cwd() / ".fbloop-locks"
        with _file_lock(folder, day):
            yield
