"""How the steps of a run execute: in one process (the embedded default), one process per step, or
on dagster-celery workers, chosen by configuration when the run starts.

One executor, ``fbloop_executor``, is set on every job. Its run config picks the engine
(``execution: {config: {celery: {}}}``); without one, ``$FBLOOP_EXECUTOR`` of the process that
runs the run does, else the config key ``dagster.executor`` (``in_process`` by default), so a
deployment switches engines by its environment alone (`deploy/celery/`). The Celery broker and
results backend come from the run config or ``$FBLOOP_CELERY_BROKER`` / ``$FBLOOP_CELERY_BACKEND``,
the queue from ``$FBLOOP_CELERY_QUEUE`` (``dagster``, dagster-celery's own, when unset); the
workers (`fbloop worker`) read the same variables, so both ends meet on one queue. The executors
themselves are Dagster's and dagster-celery's; this module only chooses.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_celery import celery_executor

from fbloop_assets.lib.common.config import load_config

EXECUTORS: dict[str, dg.ExecutorDefinition] = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor,
    "celery": celery_executor,
}
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "dagster"  # dagster-celery's own


def celery_broker() -> str:
    """The Celery broker URL: ``$FBLOOP_CELERY_BROKER``, else the local RabbitMQ."""
    return os.environ.get("FBLOOP_CELERY_BROKER") or DEFAULT_BROKER


def celery_backend() -> str:
    """The Celery results backend: ``$FBLOOP_CELERY_BACKEND``, else RPC replies over the broker."""
    return os.environ.get("FBLOOP_CELERY_BACKEND") or DEFAULT_BACKEND


def celery_queue() -> str:
    """The queue steps are sent to and workers listen on: ``$FBLOOP_CELERY_QUEUE``, else ``dagster``."""
    return os.environ.get("FBLOOP_CELERY_QUEUE") or DEFAULT_QUEUE


def executor_kind(selected: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The engine's name and its config: the run config's choice, else ``$FBLOOP_EXECUTOR``'s."""
    if selected:
        name, config = next(iter(selected.items()))
        return name, dict(config or {})
    name = os.environ.get("FBLOOP_EXECUTOR") or load_config().dagster.executor
    if name not in EXECUTORS:
        raise ValueError(f"FBLOOP_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {name!r}")
    return name, {}


def _with_defaults(name: str, config: dict[str, Any]) -> dict[str, Any]:
    # The engine's own config schema fills its defaults only when it is the job's executor; chosen
    # here, the few values its creation function reads without a default are filled in.
    config.setdefault("retries", {"enabled": {}})
    if name == "multiprocess":
        config.setdefault("max_concurrent", None)
    if name == "celery":
        config["broker"] = config.get("broker") or celery_broker()
        config["backend"] = config.get("backend") or celery_backend()
        config["config_source"] = {
            "task_default_queue": celery_queue(),
            **(config.get("config_source") or {}),
        }
        # every worker imports the project's definitions, the code the steps run
        config.setdefault("include", ["fbloop_assets.definitions"])
    return config


def _engine_config(name: str) -> dg.Field:
    return EXECUTORS[name].config_schema.as_field()


@dg.executor(
    name="fbloop",
    config_schema=dg.Field(
        dg.Selector({name: _engine_config(name) for name in EXECUTORS}),
        is_required=False,
        description="The engine: in_process, multiprocess or celery; unset, $FBLOOP_EXECUTOR decides.",
    ),
)
def fbloop_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's in-process or multiprocess executor, or dagster-celery's, by configuration."""
    name, config = executor_kind(dict(init_context.executor_config or {}))
    if name != "in_process" and init_context.instance.is_ephemeral:
        raise dg.DagsterInvariantViolationError(
            f"the {name} executor needs a persistent Dagster instance: set DAGSTER_HOME"
        )
    chosen = EXECUTORS[name]
    context = dg.InitExecutorContext(
        job=init_context.job,
        executor_def=chosen,
        executor_config=_with_defaults(name, config),
        instance=init_context.instance,
    )
    return chosen.executor_creation_fn(context)  # type: ignore[misc]
