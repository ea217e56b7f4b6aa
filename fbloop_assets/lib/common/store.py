"""fbloop's own database: the weights registry, the label store and campaign-tuning decisions.

SQLite at ``<data>/fbloop.sqlite`` by default; PostgreSQL (or any SQLAlchemy URL) when
``$FBLOOP_DATABASE_URL`` is set, with the same code. Opening a store applies the pending schema
migrations (Alembic, ``fbloop_assets/migrations``) first, so a new version of fbloop upgrades an
existing store in place; on PostgreSQL an advisory lock keeps two processes from migrating at once.

Every table is created by a migration; each module that keeps rows here declares its tables on
``METADATA`` so that queries and migrations name the same columns.
"""

from __future__ import annotations

import getpass
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

METADATA = sa.MetaData()
DATABASE_URL_ENV = "FBLOOP_DATABASE_URL"
EMBEDDED_STORE = "fbloop.sqlite"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


def embedded_url(data_dir: Path) -> str:
    """The embedded default: the SQLite file in the data directory."""
    return f"sqlite:///{data_dir / EMBEDDED_STORE}"


def database_url(data_dir: Path, configured: str = "") -> str:
    """fbloop's database: ``configured`` (the `fbloop` resource's ``database_url``), else
    ``$FBLOOP_DATABASE_URL``, else `embedded_url`.

    The one place the choice is made: the command line and the web app call it without
    ``configured``, Dagster runs through the resource, so the two cannot disagree.
    """
    return configured or os.environ.get(DATABASE_URL_ENV) or embedded_url(data_dir)


def _sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers run while a writer commits; writers wait (up to 30 s) instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # SQLAlchemy's recipe for pysqlite: let SQLAlchemy emit BEGIN itself (see `_sqlite_begin`).
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: sa.Connection) -> None:
    # IMMEDIATE takes the write lock at BEGIN, so a read-then-write transaction (move an alias
    # after reading where it points) never interleaves with another writer's.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7723001)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")  # each feature's tables are a branch off 0001


@contextmanager
def serialized(engine: sa.Engine, key: int) -> Iterator[sa.Connection]:
    """A transaction that no other `serialized` transaction with the same ``key`` interleaves with.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: every transaction here is
    ``BEGIN IMMEDIATE``, which already serializes writers.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        yield connection


def open_store(url: str) -> sa.Engine:
    """The engine for ``url``, migrated; one per URL and process."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(url)
                sa.event.listen(engine, "connect", _sqlite_connect)
                sa.event.listen(engine, "begin", _sqlite_begin)
            else:
                engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
            migrate(engine)
            _engines[url] = engine
        return engine


def open_data_store(data_dir: Path) -> sa.Engine:
    """The store that belongs to the data directory (see `database_url`)."""
    return open_store(database_url(data_dir))


def dispose_all() -> None:
    """Close every pooled connection (tests drop their databases afterwards)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def current_actor() -> str:
    """Who acts when a person runs a command: ``$FBLOOP_ACTOR``, else the login name."""
    return os.environ.get("FBLOOP_ACTOR") or getpass.getuser()
