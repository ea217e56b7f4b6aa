"""A second run of a partition day that is already running is refused with one line (issue 14.6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from fbloop_assets.cli import main
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.runlock import PartitionBusy, partition_lock
from fbloop_assets.lib.common.store import open_data_store, open_store
from fbloop_tests.test_cli import dagster_home  # noqa: F401  (the fixture)
from fbloop_tests.tiny_world import DAY, write_tiny_day

DAY_1, DAY_2 = date(2026, 1, 12), date(2026, 1, 13)


def _holds_one_lock_per_day(engine: sa.Engine) -> None:
    with partition_lock(engine, DAY_1):
        busy = pytest.raises(PartitionBusy, match="partition 2026-01-12 is already running")
        with busy, partition_lock(engine, DAY_1):
            pass
        with partition_lock(engine, DAY_2):  # another day is independent
            pass
    with partition_lock(engine, DAY_1):  # released with its block
        pass


def test_one_lock_per_day_on_sqlite(tmp_path: Path) -> None:
    _holds_one_lock_per_day(open_store(f"sqlite:///{tmp_path / 'fbloop.sqlite'}"))


@pytest.mark.postgres
def test_one_lock_per_day_on_postgres(fresh_postgres_url: str) -> None:
    _holds_one_lock_per_day(open_store(fresh_postgres_url))


def test_a_killed_holder_leaves_the_day_free(tmp_path: Path) -> None:
    # a run killed mid-way must not lock its day for good: the OS releases the flock
    url = f"sqlite:///{tmp_path / 'fbloop.sqlite'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from datetime import date;"
            "from fbloop_assets.lib.common.store import open_store;"
            "from fbloop_assets.lib.common.runlock import partition_lock\n"
            f"with partition_lock(open_store({url!r}), date(2026, 1, 12)):\n"
            "    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    engine = open_store(url)
    with pytest.raises(PartitionBusy), partition_lock(engine, DAY_1):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    with partition_lock(engine, DAY_1):
        pass


def test_fbloop_run_refuses_a_day_already_running(
    lake: Lake,
    dagster_home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_tiny_day(lake)
    with partition_lock(open_data_store(lake.root), date.fromisoformat(DAY)):
        started = time.perf_counter()
        assert main(["run", "--date", DAY]) == 1
        refused_in = time.perf_counter() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"fbloop: error: partition {DAY} is already running (another fbloop run of that day holds "
        "its lock); wait for it to finish"
    )
    assert refused_in < 10  # refused at once, not after waiting
    assert not lake.table_path("normalized_feedback", date.fromisoformat(DAY)).exists()
    assert main(["run", "--date", DAY]) == 0  # the lock released, the day runs
