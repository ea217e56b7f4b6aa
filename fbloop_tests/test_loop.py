"""The closed loop end to end: demo, promotion, suggest with the new weights, a worse candidate held back.

One short demo (6 days) runs once for the module, with attribution windows and thresholds scaled
down so that datasets of complete days exist from day 3 on; the tests then inspect what it left.
"""

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.defs.weights.assets import production_weights, weights_evaluation
from fbloop_assets.lib.config import load_config
from fbloop_assets.lib.dataset import build_dataset
from fbloop_assets.lib.lake import Lake, write_json
from fbloop_assets.lib.registry import INITIAL, Registry, WeightsVersion
from fbloop_assets.lib.suggest import ScoringContext
from fbloop_tests.conftest import TEST_KEY_HEX

PROJECT = Path(__file__).resolve().parents[1]
LOOP_CONFIG = """
[attribution_windows_days]
conversion = 2.0
[dataset]
window_days = 3
[promotion]
min_records = 500
min_labeled = 20
snips_tolerance = 0.5
"""
LAST_DAY = date(2026, 1, 6)


@dataclass
class LoopRun:
    root: Path
    report: dict
    env: dict[str, str]

    @property
    def lake(self) -> Lake:
        return Lake(self.root / "data")


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopRun]:
    root = tmp_path_factory.mktemp("loop")
    (root / "home").mkdir()
    shutil.copy(PROJECT / "dagster.yaml", root / "home" / "dagster.yaml")
    (root / "fbloop.toml").write_text(LOOP_CONFIG)
    env = {
        "DAGSTER_HOME": str(root / "home"),
        "FBLOOP_DATA_DIR": str(root / "data"),
        "FBLOOP_CONFIG": str(root / "fbloop.toml"),
        "FBLOOP_PSEUDONYM_KEY": TEST_KEY_HEX,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["demo", "--days", "6", "--seed", "7", "--signals-per-day", "20000", "--json"])
        assert code == 0
        yield LoopRun(root, json.loads(out.getvalue()), env)


@pytest.fixture
def in_loop_env(loop_run: LoopRun, monkeypatch: pytest.MonkeyPatch) -> LoopRun:
    for k, v in loop_run.env.items():
        monkeypatch.setenv(k, v)
    return loop_run


def test_demo_reports_every_day_and_moves_production(loop_run: LoopRun) -> None:
    report = loop_run.report
    assert [d["day"] for d in report["days"]] == [f"2026-01-0{i}" for i in range(1, 7)]
    assert report["production_changes"] >= 1
    assert report["final"]["version"] != INITIAL.version
    # no dataset before attribution windows have closed: nothing to learn from, production stays
    assert report["days"][0]["dataset_records"] == 0 and not report["days"][0]["promoted"]
    assert "enough_records" in report["days"][0]["reason"]
    promoted = [d for d in report["days"] if d["promoted"]]
    assert all(d["ndcg_at_5"] is not None and d["true_ndcg_at_5"] > 0 for d in promoted)
    # every day after a promotion is served by the version promoted the day before
    for before, after in zip(report["days"], report["days"][1:], strict=False):
        assert after["served_by"] == before["production"]
    history = Registry.of(loop_run.lake).history()
    assert [m.to_version for m in history][-1] == report["final"]["version"]


def test_served_slates_carry_the_version_that_served_them(loop_run: LoopRun) -> None:
    lake = loop_run.lake
    for day in loop_run.report["days"]:
        recs = pl.read_parquet(lake.table_path("raw_recommendations", date.fromisoformat(day["day"])))
        assert recs["weights_version"].unique().to_list() == [day["served_by"]]
        assert recs["propensity"].is_between(0, 1, closed="right").all()


def test_suggest_after_the_run_uses_the_promoted_version_and_ranks_differently(
    in_loop_env: LoopRun, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = in_loop_env.lake
    production = Registry.of(lake).production()
    new = ScoringContext.from_lake(lake, LAST_DAY, production)
    old = ScoringContext.from_lake(lake, LAST_DAY, INITIAL)
    changed = [
        c
        for c in sorted(new.campaigns)
        if new.rank(c, 10)["creator_id"].to_list() != old.rank(c, 10)["creator_id"].to_list()
    ]
    assert changed, "the promoted weights rank no campaign differently from the hand-set default"
    assert main(["suggest", "--campaign", changed[0], "--k", "5", "--seed", "3", "--json"]) == 0
    slate = json.loads(capsys.readouterr().out)
    assert slate["weights_version"] == production.version != INITIAL.version
    assert [r["rank"] for r in slate["slate"]] == [1, 2, 3, 4, 5]
    logged = pl.read_ndjson(slate["logged_to"])
    assert logged["weights_version"].unique().to_list() == [production.version]
    assert logged["request_id"].unique().to_list() == [slate["request_id"]]


def test_a_worse_candidate_is_not_promoted(in_loop_env: LoopRun) -> None:
    lake = in_loop_env.lake
    registry = Registry.of(lake)
    before, moves = registry.production(), len(registry.history())
    candidate_record = json.loads(lake.record_path("candidate_weights", LAST_DAY).read_text())
    # the opposite of what production believes: every preference reversed
    worse = registry.save(
        WeightsVersion.create(
            {f: -w for f, w in before.weights.items()}, before.version, candidate_record["dataset_version"]
        )
    )
    write_json(
        candidate_record | {"candidate": worse.version}, lake.record_path("candidate_weights", LAST_DAY)
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [weights_evaluation, production_weights],
            partition_key=LAST_DAY.isoformat(),
            resources={"fbloop": FbloopResource()},
            instance=instance,
        )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["no_regression"] is False
    (mat,) = result.asset_materializations_for_node("production_weights")
    assert mat.metadata["promoted"].value is False
    assert "no_regression" in str(mat.metadata["reason"].value)
    assert registry.production().version == before.version and len(registry.history()) == moves


def test_the_same_inputs_give_the_same_dataset_version(in_loop_env: LoopRun) -> None:
    lake, config = in_loop_env.lake, load_config()
    first = build_dataset(lake, LAST_DAY, config)
    again = build_dataset(lake, LAST_DAY, config)
    assert first.version == again.version and first.version.startswith("ds-")
    manifest = first.manifest
    assert manifest["record_count"] == first.examples().height > 0
    assert manifest["serving_days"] == ["2026-01-02", "2026-01-03", "2026-01-04"]
    assert set(manifest["partitions_read"]) >= {"normalized_feedback", "raw_recommendations"}
    examples = first.examples()
    assert examples["recommendation_id"].is_unique().all()
    assert examples["holdout"].mean() == pytest.approx(0.3, abs=0.05)
    assert not np.isnan(examples["niche_match"].to_numpy()).any()


def test_evaluate_compares_any_weights_with_production(
    in_loop_env: LoopRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    weights_file = tmp_path / "mine.json"
    weights_file.write_text(json.dumps({"weights": INITIAL.weights}))
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(weights_file),
                "--from",
                "2026-01-02",
                "--to",
                "2026-01-04",
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["records"] > 0 and len(payload["results"]) == 2
    for metrics in payload["results"].values():
        assert 0 <= metrics["ndcg_at_5"] <= 1 and metrics["snips_conversion_yield"] >= 0
        assert 0 < metrics["catalog_coverage"] <= 1 and 0 <= metrics["exposure_gini"] <= 1
    assert (
        main(["evaluate", "--weights", "w-000000000000", "--from", "2026-01-02", "--to", "2026-01-04"]) == 1
    )
    assert "unknown weights version" in capsys.readouterr().err
