"""The executor choice (`defs/executors.py`): run config first, else `$FBLOOP_EXECUTOR`, else in process."""

import dagster as dg
import pytest

from fbloop_assets.definitions import defs
from fbloop_assets.defs import executors


def test_every_job_uses_the_fbloop_executor() -> None:
    for name in ("daily_feedback_loop", "reference_data"):
        assert defs.resolve_job_def(name).executor_def.name == "fbloop"


def test_without_configuration_steps_run_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FBLOOP_EXECUTOR", raising=False)
    assert executors.executor_kind({}) == ("in_process", {})


def test_the_environment_chooses_when_the_run_config_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBLOOP_EXECUTOR", "celery")
    assert executors.executor_kind({}) == ("celery", {})
    assert executors.executor_kind({"multiprocess": {"max_concurrent": 2}}) == (
        "multiprocess",
        {"max_concurrent": 2},
    )


def test_an_unknown_engine_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBLOOP_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="FBLOOP_EXECUTOR must be one of in_process, multiprocess, celery"):
        executors.executor_kind({})


def test_celery_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBLOOP_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("FBLOOP_CELERY_QUEUE", "fbloop-eu")
    monkeypatch.delenv("FBLOOP_CELERY_BACKEND", raising=False)
    config = executors._with_defaults("celery", {})
    assert config["broker"] == "redis://127.0.0.1:6379/0"
    assert config["backend"] == "rpc://"
    assert config["config_source"]["task_default_queue"] == "fbloop-eu"
    assert executors._with_defaults("celery", {"broker": "amqp://h//"})["broker"] == "amqp://h//"


@pytest.mark.parametrize(
    "engine",
    [{"in_process": {}}, {"multiprocess": {"max_concurrent": 2}}, {"celery": {"broker": "amqp://h//"}}],
)
def test_the_run_config_picks_any_engine_with_its_own_settings(engine: dict) -> None:
    job = defs.resolve_job_def("reference_data")
    dg.validate_run_config(job, {"execution": {"config": engine}})


def test_two_engines_at_once_are_refused() -> None:
    job = defs.resolve_job_def("reference_data")
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {"in_process": {}, "celery": {}}}})
