"""Which earlier days a step waits for: unfinished runs of those days still to write what it reads.

The waiting itself (steps put up for retry on Celery workers until the day before has decided)
is exercised end to end in `test_celery.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pytest

from fbloop_assets.definitions import defs
from fbloop_assets.defs.ordering import still_to_write
from fbloop_assets.defs.partitions import daily_partitions

TODAY = date(2026, 1, 3)
YESTERDAY = "2026-01-02"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _run(
    instance: dg.DagsterInstance,
    day: str,
    *,
    assets: set[str] | None = None,
    status=dg.DagsterRunStatus.STARTED,
) -> dg.DagsterRun:
    return instance.create_run_for_job(
        job_def=defs.resolve_job_def("daily_feedback_loop"),
        run_config={},
        tags={"dagster/partition": day},
        status=status,
        asset_selection=frozenset(dg.AssetKey(a) for a in assets) if assets is not None else None,
    )


def test_a_running_day_before_is_waited_for_until_its_run_ends(instance: dg.DagsterInstance) -> None:
    run = _run(instance, YESTERDAY)
    reads = {"production_weights": [date(2026, 1, 2)]}
    assert still_to_write(instance, reads, TODAY, "this-run") == [
        f"production_weights {YESTERDAY} (run {run.run_id[:8]})"
    ]
    instance.report_run_failed(run)  # a run that ended without writing it: read what is there
    assert still_to_write(instance, reads, TODAY, "this-run") == []


def test_runs_not_yet_started_count_and_finished_ones_do_not(instance: dg.DagsterInstance) -> None:
    _run(instance, YESTERDAY, status=dg.DagsterRunStatus.NOT_STARTED)
    _run(instance, "2026-01-01", status=dg.DagsterRunStatus.SUCCESS)
    reads = {"raw_recommendations": [date(2026, 1, 1), date(2026, 1, 2)]}
    pending = still_to_write(instance, reads, TODAY, "this-run")
    assert [p.split(" (")[0] for p in pending] == [f"raw_recommendations {YESTERDAY}"]


def test_only_runs_that_include_the_asset_are_waited_for(instance: dg.DagsterInstance) -> None:
    _run(instance, YESTERDAY, assets={"raw_labels", "raw_recommendations"})
    day = [date(2026, 1, 2)]
    assert still_to_write(instance, {"production_weights": day}, TODAY, "this-run") == []
    assert len(still_to_write(instance, {"raw_recommendations": day}, TODAY, "this-run")) == 1
    # a table written by another asset waits for that asset
    assert len(still_to_write(instance, {"label_retractions": day}, TODAY, "this-run")) == 1


def test_the_own_day_later_days_days_before_the_partitions_and_the_own_run_are_not_waited_for(
    instance: dg.DagsterInstance,
) -> None:
    first = daily_partitions.start.date()
    before = date.fromordinal(first.toordinal() - 1)
    _run(instance, TODAY.isoformat())
    _run(instance, "2026-01-04")
    _run(instance, before.isoformat())
    reads = {"normalized_feedback": [before, TODAY, date(2026, 1, 4)]}
    assert still_to_write(instance, reads, TODAY, "this-run") == []
    mine = _run(instance, YESTERDAY)
    assert still_to_write(instance, {"normalized_feedback": [date(2026, 1, 2)]}, TODAY, mine.run_id) == []
