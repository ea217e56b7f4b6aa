"""The guards end to end: a label flood and bought engagement each block promotion, the next
normal day promotes again, held-back rows stay in storage flagged, a missing partition is reported.

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


def test_a_label_flood_blocks_promotion_and_names_the_reviewer(guarded: ProjectRun) -> None:
    flooded = _day(guarded, FLOOD)
    assert flooded["production"] == _day(guarded, FLOOD - 1)["production"]
    (cause,) = [b for b in flooded["blocked"] if b.startswith("held_back_feedback/label_quality")]
    reviewers = pl.read_parquet(
        guarded.lake.table_path("held_back_feedback", START + timedelta(days=FLOOD))
    ).filter(pl.col("guard") == "label_quality")["reviewer_id"]
    assert reviewers.n_unique() == 1 and reviewers[0] in cause
    # the next normal day promotes again
    after = _day(guarded, FLOOD + 1)
    assert not after["blocked"] and after["production"] != flooded["production"]


def test_bought_engagement_blocks_promotion_and_names_the_creators(guarded: ProjectRun) -> None:
    bought = _day(guarded, BOTS)
    assert bought["production"] == _day(guarded, BOTS - 1)["production"]
    (cause,) = [b for b in bought["blocked"] if b.startswith("held_back_feedback/outcome_anomalies")]
    assert "held back" in cause and ("creator" in cause or "campaign" in cause)
    after = _day(guarded, BOTS + 1)
    assert not after["blocked"] and after["production"] != bought["production"]


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
    record = json.loads(lake.record_path("feedback_dataset", last).read_text())
    manifest = json.loads((lake.root / record["manifest"]).read_text())
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
