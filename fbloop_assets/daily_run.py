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

JOB_NAME = "daily_feedback_loop"
REFERENCE_JOB = "reference_data"


class RunFailed(RuntimeError):
    """A step of the daily job failed; the message names the step and its error."""


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
    loop: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _values(materialization: dg.AssetMaterialization) -> dict[str, Any]:
    return {k: v.value for k, v in materialization.metadata.items()}


def _root_cause(error: Any) -> str:  # dagster's SerializableErrorInfo
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[-1] if lines else error.cls_name or "unknown error"


def _execute(job_name: str, day: date, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        partition_key=day.isoformat(),
        instance=instance,
        raise_on_error=False,
        # failures are summarised in RunFailed; the console logger would print whole tracebacks
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
    if not result.success:
        detail = "; ".join(
            f"{e.step_key}: {_root_cause(e.step_failure_data.error)}"
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data.error
        )
        raise RunFailed(
            f"{job_name} run for {day} failed ({detail or 'see the Dagster UI'}); run id {result.run_id}"
        )
    return result


def ingest_reference(day: date, instance: dg.DagsterInstance | None = None) -> str:
    """Materialize the day's creator and campaign snapshots (what suggestions are scored against)."""
    return _execute(REFERENCE_JOB, day, instance or dg.DagsterInstance.get()).run_id


def run_day(day: date, instance: dg.DagsterInstance | None = None) -> DaySummary:
    """Materialize every asset of the daily job for ``day``; raise RunFailed if a step fails."""
    result = _execute(JOB_NAME, day, instance or dg.DagsterInstance.get())
    summary = DaySummary(
        date=day.isoformat(), run_id=result.run_id, dagster_home=os.environ.get("DAGSTER_HOME", "")
    )
    for node in ("creators", "campaigns", "raw_recommendations", "raw_outcome_signals", "raw_labels"):
        for mat in result.asset_materializations_for_node(node):
            values = _values(mat)
            summary.rows_read[node] = values["rows_read"]
            summary.rows_valid[node] = values["dagster/row_count"]
    for mat in result.asset_materializations_for_node("quarantine"):
        values = _values(mat)
        summary.quarantined = {"total": values["dagster/row_count"]} | {
            k.removeprefix("reason/"): v for k, v in values.items() if k.startswith("reason/")
        }
    for mat in result.asset_materializations_for_node("normalized_feedback"):
        values = _values(mat)
        counts = ("normalized", "excluded_no_consent", "incomplete", "unknown_recommendation", "deduplicated")
        summary.feedback = {k: values[k] for k in counts}
    for evaluation in result.get_asset_check_evaluations():
        summary.checks[evaluation.check_name] = "passed" if evaluation.passed else "failed"
    for node, keys in _LOOP_VALUES.items():
        for mat in result.asset_materializations_for_node(node):
            values = _values(mat)
            summary.loop |= {f"{node}/{k}": values[k] for k in keys if k in values}
    return summary


_LOOP_VALUES: dict[str, tuple[str, ...]] = {
    "feedback_dataset": ("dataset_version", "dagster/row_count", "labeled_records"),
    "candidate_weights": ("candidate",),
    "weights_evaluation": (
        "candidate/ndcg_at_5",
        "production/ndcg_at_5",
        "candidate/snips_conversions_per_slate",
        "production/snips_conversions_per_slate",
        "candidate/snips_conversion_yield",
        "production/snips_conversion_yield",
    ),
    "production_weights": ("production", "staging", "canary", "promoted", "reason", "canary_review"),
}
