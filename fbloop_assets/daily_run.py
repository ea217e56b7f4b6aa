"""Run the daily loop for one partition in-process on the configured Dagster instance.

Used by `fbloop run` and `fbloop demo`; the same job the schedule and the UI run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from fbloop_assets.definitions import defs
from fbloop_assets.lib.common.lake import Lake, resolve_data_dir
from fbloop_assets.lib.common.runlock import PartitionBusy, partition_lock
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.weights.decisions import Decisions
from fbloop_assets.lib.weights.outcome import loop_outcome

JOB_NAME = "daily_feedback_loop"
REFERENCE_JOB = "reference_data"


class RunFailed(RuntimeError):
    """A step of the daily job failed; the message names the step and its error."""


# The error Dagster raises in a step whose blocking asset check failed with ERROR severity: the
# run stops there on purpose (a guard held the loop back), which is not a breakdown.
BLOCKED_BY_CHECK = "DagsterAssetCheckFailedError"


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME``; when unset and ./dagster.yaml exists, the current folder (the project)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        if not Path("dagster.yaml").exists():
            raise RuntimeError(
                "DAGSTER_HOME is not set and there is no dagster.yaml here: run from the project folder"
            )
        home = str(Path.cwd())
        os.environ["DAGSTER_HOME"] = home
    if not Path(home).is_absolute():
        raise RuntimeError(f"DAGSTER_HOME must be an absolute path, got {home!r}")
    return Path(home)


@dataclass
class DaySummary:
    date: str
    run_id: str
    dagster_home: str
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_valid: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    feedback: dict[str, int] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    # What the loop made of the day (`LoopOutcome.as_dict`): dataset, candidate, evaluation,
    # decisions, read from the typed records of the assets this run materialized.
    loop: dict[str, Any] = field(default_factory=dict)
    # Blocking checks that failed with ERROR severity: "asset/check: why"; the steps after them
    # did not run, so production stayed as it was.
    blocked: list[str] = field(default_factory=list)
    # The day's decision as recorded (`LoopDecision.as_dict`): production_weights', else the
    # canary review's on a day a guard blocked; read from the typed record, not from metadata.
    decision: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _values(materialization: dg.AssetMaterialization) -> dict[str, Any]:
    return {k: v.value for k, v in materialization.metadata.items()}


def _materializations(result: dg.ExecuteInProcessResult, asset: str) -> list[dg.AssetMaterialization]:
    """The run's materializations of ``asset`` (one step may materialize several assets)."""
    key = dg.AssetKey(asset)
    return [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == key]


def _root_cause(error: Any) -> str:  # dagster's SerializableErrorInfo
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[-1] if lines else error.cls_name or "unknown error"


# Runs executed here carry this tag: their exclusion is the partition lock, which dies with its
# process; runs the daemon launched (UI, schedule, backfill) are found on the instance.
LAUNCHED_BY = {"fbloop/launched_by": "cli"}
_LIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _refuse_if_running(instance: dg.DagsterInstance, day: date) -> None:
    """Raise `PartitionBusy` if the instance runs ``day`` already; fail runs left by dead processes.

    Called holding the day's lock: an unfinished run of ours for the day cannot be alive then.
    """
    live = instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/partition": day.isoformat()}, statuses=_LIVE)
    )
    for run in live:
        if run.tags.get("fbloop/launched_by") == LAUNCHED_BY["fbloop/launched_by"]:
            instance.report_run_failed(run, "its process ended before the run finished")
        else:
            raise PartitionBusy(
                f"partition {day.isoformat()} is already running: run {run.run_id} of {run.job_name} "
                f"({run.status.value.lower()}) on the Dagster instance; wait for it or cancel it in the UI"
            )


def _execute(
    job_name: str,
    day: date,
    instance: dg.DagsterInstance,
    guards: bool | None = None,
    assets: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name) if assets is None else defs.resolve_implicit_global_asset_job_def()
    # failures are summarised in RunFailed; the console logger would print whole tracebacks
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if guards is not None:
        run_config["resources"] = {"fbloop": {"config": {"guards": "on" if guards else "off"}}}
    with partition_lock(open_data_store(resolve_data_dir()), day):
        _refuse_if_running(instance, day)
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
            run_config=run_config,
            asset_selection=None if assets is None else [dg.AssetKey(a) for a in assets],
            tags=LAUNCHED_BY,
        )
    errors = [
        (e.step_key, error)
        for e in result.all_events
        if e.is_step_failure and (error := e.step_failure_data.error) is not None
    ]
    breakdowns = [(step, error) for step, error in errors if error.cls_name != BLOCKED_BY_CHECK]
    if not result.success and (breakdowns or not errors):
        detail = "; ".join(f"{step}: {_root_cause(error)}" for step, error in breakdowns)
        raise RunFailed(
            f"{job_name} run for {day} failed ({detail or 'see the Dagster UI'}); run id {result.run_id}"
        )
    return result


def ingest_reference(day: date, instance: dg.DagsterInstance | None = None) -> str:
    """Materialize the day's creator and campaign snapshots (what suggestions are scored against)."""
    return _execute(REFERENCE_JOB, day, instance or dg.DagsterInstance.get()).run_id


def rematerialize(asset: str, day: date, instance: dg.DagsterInstance | None = None) -> str:
    """Materialize one asset of ``day`` again, alone (e.g. after a release); the run id."""
    return _execute(asset, day, instance or dg.DagsterInstance.get(), assets=[asset]).run_id


def run_day(day: date, instance: dg.DagsterInstance | None = None, guards: bool | None = None) -> DaySummary:
    """Materialize every asset of the daily job for ``day``; raise RunFailed if a step fails.

    A step stopped by a failed blocking check is not a failure: the summary lists it under
    ``blocked``. ``guards`` overrides ``guards.enabled`` of the configuration for this run.
    """
    result = _execute(JOB_NAME, day, instance or dg.DagsterInstance.get(), guards)
    summary = DaySummary(
        date=day.isoformat(), run_id=result.run_id, dagster_home=os.environ.get("DAGSTER_HOME", "")
    )
    for node in ("creators", "campaigns", "raw_recommendations", "raw_outcome_signals", "raw_labels"):
        for mat in _materializations(result, node):
            values = _values(mat)
            summary.rows_read[node] = values["rows_read"]
            summary.rows_valid[node] = values["dagster/row_count"]
    for mat in _materializations(result, "quarantine"):
        values = _values(mat)
        summary.quarantined = {"total": values["dagster/row_count"]} | {
            k.removeprefix("reason/"): v for k, v in values.items() if k.startswith("reason/")
        }
    for mat in _materializations(result, "normalized_feedback"):
        values = _values(mat)
        counts = ("normalized", "excluded_no_consent", "incomplete", "unknown_recommendation", "deduplicated")
        summary.feedback = {k: values[k] for k in counts}
    for evaluation in result.get_asset_check_evaluations():
        name = evaluation.check_name
        if evaluation.passed:
            summary.checks[name] = "passed"
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            summary.checks[name] = "warned"
        else:
            summary.checks[name] = "failed"
            if evaluation.blocking:
                cause = evaluation.description or "see its metadata"
                summary.blocked.append(f"{evaluation.asset_key.to_user_string()}/{name}: {cause}")
    ran = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key}
    decisions = Decisions(open_data_store(resolve_data_dir()))
    decision = decisions.get(day, "production_weights") or decisions.get(day, "canary_review")
    summary.decision = decision.as_dict() if decision else None
    summary.loop = loop_outcome(Lake(resolve_data_dir()), day, ran, decisions).as_dict()
    return summary
