"""A small simulated world run through the real CLI, and a scan of every file it left behind.

`run_world` is `fbloop simulate` then `fbloop run --date` per day in a project folder of its own;
`files_holding` reads every file under the data directory (Parquet decoded, everything else as
bytes) and names those that hold any of the needles, so that a value compressed inside a Parquet
page cannot hide from the scan.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from fbloop_assets.cli import main
from fbloop_tests.conftest import project_env

NOT_FBLOOPS = ("simulation",)  # the simulator's truth and manifest: written by the test's world
EMBEDDED_DB = "fbloop.sqlite"


def cli_json(argv: list[str]) -> Any:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([*argv, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def run_world(root: Path, config: str, monkeypatch: pytest.MonkeyPatch, days: int = 3) -> dict[str, Any]:
    """Simulate ``days`` days (seed 7, 3,000 signals a day) and run each; the manifest."""
    for name, value in project_env(root, config).items():
        monkeypatch.setenv(name, value)
    manifest = cli_json(["simulate", "--days", str(days), "--seed", "7", "--signals-per-day", "3000"])
    for day in manifest["days"]:
        cli_json(["run", "--date", day])
    return manifest


def _text(path: Path) -> str:
    if path.suffix == ".parquet":
        try:
            return pl.read_parquet(path).write_ndjson()
        except Exception:  # noqa: BLE001 - a deliberately broken delivery: scan its bytes
            pass
    return path.read_bytes().decode("utf-8", errors="replace")


def files_holding(data_dir: Path, needles: list[str]) -> dict[str, list[str]]:
    """{needle: files (relative) that hold it}, every file but the simulator's and the embedded DB."""
    found: dict[str, list[str]] = {n: [] for n in needles}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(data_dir)
        if relative.parts[0] in NOT_FBLOOPS or relative.name.startswith(EMBEDDED_DB):
            continue
        text = _text(path)
        for needle in needles:
            if needle in text:
                found[needle].append(relative.as_posix())
    return found


def tables_holding(url: str, needles: list[str]) -> dict[str, set[str]]:
    """{needle: tables of fbloop's database with a row that holds it}."""
    engine = sa.create_engine(url)
    found: dict[str, set[str]] = {n: set() for n in needles}
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as connection:
            for table in meta.sorted_tables:
                for row in connection.execute(sa.select(table)):
                    text = json.dumps([str(v) for v in row])
                    for needle in needles:
                        if needle in text:
                            found[needle].add(table.name)
    finally:
        engine.dispose()
    return found
