"""Days that run at once: a step waits only for the earlier days it reads, as data.

Every partitioned asset depends on its own day in the lineage graph (`defs/partitions.py`); what a
step reads of earlier days (a window of recommendations, trailing counts, the previous dataset,
the previous day's registry decision) is data. When runs of several days are in flight together
(a backfill on the Celery deployment, whose queue starts up to `max_concurrent_runs` at once), a
step that reads an earlier day first asks the Dagster instance whether that day is still to be
written: an unfinished run of that day that includes the asset and has not materialized it yet.
While one is, the step is put up for retry (Dagster's `RetryRequested`), which frees its worker for
other steps and tries again a few seconds later; once every earlier day it reads is written, or
its run ended without writing it, the step reads what is there, exactly as it would have had the
days run one after another.

So ingestion and normalization of different days run side by side, and the registry keeps its
order: `candidate_weights` and `canary_review` of a day read the previous day's
`production_weights` decision, so the days decide oldest first however their runs are scheduled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import dagster as dg

from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.lib.audit.report import PRODUCED_BY

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
MAX_WAIT_SECONDS = 6 * 3600  # then the step fails and says what it waited for
LONGEST_PAUSE = 10


def _pause(attempt: int) -> int:
    """Seconds before the next look: 1, 2, 3, ... up to LONGEST_PAUSE."""
    return min(LONGEST_PAUSE, 1 + attempt)


def _waited(attempts: int) -> int:
    return sum(_pause(a) for a in range(attempts))


def _includes(run: dg.DagsterRun, key: dg.AssetKey) -> bool:
    # a run without an asset selection runs its whole job: it may write any asset of its day
    return run.asset_selection is None or key in run.asset_selection


def _written_by(instance: dg.DagsterInstance, key: dg.AssetKey, day: str, run_id: str) -> bool:
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    return bool(latest) and latest[0].run_id == run_id


def still_to_write(
    instance: dg.DagsterInstance, reads: Mapping[str, Iterable[date]], today: date, run_id: str
) -> list[str]:
    """``asset day`` for each day before ``today`` in ``reads`` that an unfinished run is still to write.

    ``reads`` names assets or the tables they write (`label_retractions` is written by `raw_labels`).
    """
    first = daily_partitions.start.date()
    by_day: dict[str, set[str]] = {}
    for table, days in reads.items():
        for day in days:
            if first <= day < today:
                by_day.setdefault(day.isoformat(), set()).add(PRODUCED_BY.get(table, table))
    pending: list[str] = []
    if not by_day:
        return pending
    # one query: the few unfinished runs, then those of the days read
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
    for run in sorted(unfinished, key=lambda r: r.tags.get("dagster/partition", "")):
        key_day = run.tags.get("dagster/partition")
        if run.run_id == run_id or key_day not in by_day:
            continue
        for asset in sorted(by_day[key_day]):
            key = dg.AssetKey(asset)
            if _includes(run, key) and not _written_by(instance, key, key_day, run.run_id):
                pending.append(f"{asset} {key_day} (run {run.run_id[:8]})")
    return pending


def wait_for_earlier_days(context: dg.AssetExecutionContext, reads: Mapping[str, Iterable[date]]) -> None:
    """Put the step up for retry while a run of an earlier day in ``reads`` is still to write it.

    ``reads``: asset (or table) name -> the days of it this step reads; the step's own day and
    later ones are left out. Fails, naming what it waited for, after MAX_WAIT_SECONDS of waiting.
    """
    today = date.fromisoformat(context.partition_key)
    pending = still_to_write(context.instance, reads, today, context.run.run_id)
    if not pending:
        return
    attempt = context.retry_number
    listed = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
    if _waited(attempt) >= MAX_WAIT_SECONDS:
        raise dg.Failure(
            f"waited {_waited(attempt) // 60} min for earlier days still being written: {listed}"
        )
    context.log.info(f"waiting for earlier days this step reads: {listed}")
    raise dg.RetryRequested(max_retries=attempt + 1, seconds_to_wait=_pause(attempt))
