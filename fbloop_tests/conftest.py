"""Shared fixtures: a fresh data directory, a pseudonymization key, landing-file writers, a project folder."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from fbloop_assets.lib.common.lake import Lake

TEST_KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may read the developer's own data, config or key.
    monkeypatch.setenv("FBLOOP_PSEUDONYM_KEY", TEST_KEY_HEX)
    monkeypatch.setenv("FBLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FBLOOP_CONFIG", raising=False)
    monkeypatch.delenv("FBLOOP_PSEUDONYM_KEY_FILE", raising=False)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "data")


@dataclass
class ProjectRun:
    """What a module-scoped demo left: its project folder, report and environment."""

    root: Path
    report: dict
    env: dict[str, str]

    @property
    def lake(self) -> Lake:
        return Lake(self.root / "data")


def project_env(root: Path, config: str) -> dict[str, str]:
    """A project folder under ``root`` (Dagster home, data dir, ``config`` as fbloop.toml); its env."""
    (root / "home").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", root / "home" / "dagster.yaml")
    (root / "fbloop.toml").write_text(config)
    return {
        "DAGSTER_HOME": str(root / "home"),
        "FBLOOP_DATA_DIR": str(root / "data"),
        "FBLOOP_CONFIG": str(root / "fbloop.toml"),
        "FBLOOP_PSEUDONYM_KEY": TEST_KEY_HEX,
    }


def write_landing(lake: Lake, source: str, day: str, name: str, rows: list[dict]) -> Path:
    """Write ``rows`` as a landing file; the suffix of ``name`` picks the format."""
    folder = lake.root / "landing" / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif name.endswith(".csv"):
        pl.DataFrame(rows, infer_schema_length=None).write_csv(path)
    else:
        pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)
    return path


PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def _admin_connection():  # type: ignore[no-untyped-def]
    """A connection to the server's admin database; skips (or, under FBLOOP_REQUIRE_PG=1, fails)."""
    import psycopg2

    try:
        admin = psycopg2.connect(PG_ADMIN_DSN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        if os.environ.get("FBLOOP_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required (FBLOOP_REQUIRE_PG=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    admin.autocommit = True
    return admin


@contextmanager
def _fresh_database() -> Iterator[str]:
    from fbloop_assets.lib.common.store import dispose_all

    admin = _admin_connection()
    name = f"fbloop_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        dispose_all()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (Dagster's storage), dropped afterwards."""
    with _fresh_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (fbloop's own store), dropped afterwards.

    Skips when no server is reachable, except under FBLOOP_REQUIRE_PG=1 (CI), where it fails.
    """
    with _fresh_database() as url:
        yield url
