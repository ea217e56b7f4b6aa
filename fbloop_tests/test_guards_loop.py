"""The guards end to end: a label flood and bought engagement are held back with a warning while the
day goes on, held-back rows stay in storage flagged, a missing partition is reported.

One 9-day demo runs once for the module, windows and thresholds scaled down (datasets from day 3
on) and canary.share = 0, so that a candidate that passes every guard becomes production at once:
the label flood comes on day 6, the bought engagement on day 8.
"""

import json
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.defs.dataset.assets import feedback_dataset
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.demo import run_demo
from fbloop_assets.lib.audit.report import dataset_feedback
from fbloop_assets.lib.common.config import load_config
from fbloop_assets.lib.dataset.build import build_dataset
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.weights.decisions import Decisions
from fbloop_tests.conftest import ProjectRun, project_env

START = date(2026, 1, 1)
FLOOD, BOTS, DAYS = 5, 7, 9  # 0-based day indices
CONFIG = """
[attribution_windows_days]
conversion = 2.0
[dataset]
window_days = 3
[canary]
share = 0.0
[guards.evidence]
min_records = 500
min_labeled = 20
min_segment_records = 10
[guards.regression]
ndcg_tolerance = 0.05
snips_tolerance = 0.5
[guards.exposure]
gini_tolerance = 0.2
coverage_tolerance = 0.2
new_creator_tolerance = 0.2
[guards.drift]
psi_warn = 2.0
psi_fail = 4.0
"""


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectRun]:
    root = tmp_path_factory.mktemp("guards")
    env = project_env(root, CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        with dg.DagsterInstance.get() as instance:
            report = run_demo(
                root / "data",
                load_config(),
                days=DAYS,
                seed=7,
                start=START,
                signals_per_day=20_000,
                instance=instance,
                progress=lambda _: None,
                attack_days={"label-flood": (FLOOD,), "bot-spike": (BOTS,)},
            )
        yield ProjectRun(root, report, env)


def _day(run: ProjectRun, index: int) -> dict:
    return run.report["days"][index]


def _recorded_check(run: ProjectRun, index: int, asset: str, name: str) -> dict:
    """The day's check outcome as `production_weights` recorded it with the day's decision."""
    decision = Decisions.of(run.lake).get(START + timedelta(days=index), "production_weights")
    assert decision is not None
    (check,) = [c for c in decision.checks if (c["asset"], c["name"]) == (asset, name)]
    return check


def test_a_label_flood_is_held_back_with_a_warning_and_the_day_goes_on(guarded: ProjectRun) -> None:
    # rows held back are dealt with: no one must act, so the run stays green (issue 16.3)
    flooded = _day(guarded, FLOOD)
    assert flooded["blocked"] == []
    check = _recorded_check(guarded, FLOOD, "held_back_feedback", "label_quality")
    assert check["verdict"] == "warn" and "held back" in check["detail"]
    reviewers = pl.read_parquet(
        guarded.lake.table_path("held_back_feedback", START + timedelta(days=FLOOD))
    ).filter(pl.col("guard") == "label_quality")["reviewer_id"]
    assert reviewers.n_unique() == 1 and reviewers[0] in check["detail"]
    assert check["held_back"]["rows"] == reviewers.len()


def test_bought_engagement_is_held_back_with_a_warning_and_names_the_creators(guarded: ProjectRun) -> None:
    bought = _day(guarded, BOTS)
    assert bought["blocked"] == []
    check = _recorded_check(guarded, BOTS, "held_back_feedback", "outcome_anomalies")
    assert check["verdict"] == "warn" and "held back" in check["detail"]
    assert "creator" in check["detail"] or "campaign" in check["detail"]
    assert check["held_back"]["rows"] > 0


def test_held_back_rows_stay_in_storage_flagged_and_out_of_datasets(guarded: ProjectRun) -> None:
    lake = guarded.lake
    days = [START + timedelta(days=i) for i in (FLOOD, BOTS)]
    held = pl.concat([pl.read_parquet(lake.table_path("held_back_feedback", d)) for d in days])
    assert set(held["guard"]) == {"label_quality", "outcome_anomalies"}
    assert held["reason"].null_count() == 0
    # still in normalized_feedback, untouched
    stored = pl.concat([pl.read_parquet(lake.table_path("normalized_feedback", d)) for d in days])
    assert held.join(stored, on="feedback_id", how="anti").is_empty()
    # and no dataset built after them uses any of them
    last = START + timedelta(days=DAYS - 1)
    manifest = json.loads((lake.root / DatasetRecord.read(lake, last).manifest).read_text())
    assert manifest["rows_held_back"] > 0
    used = dataset_feedback(lake, manifest)
    assert used.join(held, on="feedback_id", how="semi").is_empty()


def test_a_partition_missing_from_the_window_is_reported(
    guarded: ProjectRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lake = guarded.lake
    for k, v in guarded.env.items():
        monkeypatch.setenv(k, v)
    last = START + timedelta(days=DAYS - 1)
    gap = last - timedelta(days=1)
    path = lake.table_path("normalized_feedback", gap)
    kept = tmp_path / "kept.parquet"
    shutil.move(path, kept)
    try:
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [feedback_dataset],
                partition_key=last.isoformat(),
                resources={"fbloop": FbloopResource()},
                instance=instance,
                selection=[feedback_dataset],
                raise_on_error=False,
            )
    finally:
        shutil.move(kept, path)
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "completeness"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert f"normalized_feedback missing {gap.isoformat()}" in (check.description or "")
    assert not result.success  # blocking: nothing downstream would run


def test_an_analyst_releases_held_back_rows_and_later_datasets_use_them(
    guarded: ProjectRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # runs last: it changes what the module's run left behind
    lake = guarded.lake
    for k, v in guarded.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FBLOOP_ACTOR", "analyst-7")
    day = START + timedelta(days=FLOOD)
    flood = pl.read_parquet(lake.table_path("held_back_feedback", day)).filter(
        pl.col("guard") == "label_quality"
    )
    reviewer = flood["reviewer_id"][0]
    assert main(["held-back", "list", "--date", day.isoformat(), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["days"][0]
    assert listed["rows"] >= flood.height and not listed["releases"]
    args = ["held-back", "release", "--date", day.isoformat(), "--guard", "label_quality"]
    assert main([*args, "--subject", "nobody", "--reason", "x"]) == 1
    assert "nothing held back" in capsys.readouterr().err
    assert main([*args, "--subject", reviewer, "--reason", "a real campaign sprint", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["rows_released"] == flood.height
    assert done["release"]["subject"] == reviewer and done["release"]["reason"] == "a real campaign sprint"
    still = pl.read_parquet(lake.table_path("held_back_feedback", day))
    assert still.filter(pl.col("guard") == "label_quality").is_empty()
    # the next dataset built uses them (the same inputs otherwise)
    last = START + timedelta(days=DAYS - 1)
    manifest = build_dataset(lake, last, load_config()).manifest
    used = dataset_feedback(lake, manifest)
    assert not used.join(flood, on="feedback_id", how="semi").is_empty()
    assert main(["held-back", "list", "--date", day.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["days"][0]["releases"][0]["actor"] == "analyst-7"
