"""The closed loop end to end: demo, promotion, suggest with the new weights, a worse candidate held back.

One short demo (6 days) runs once for the module, with attribution windows and thresholds scaled
down so that datasets of complete days exist from day 3 on; the tests then inspect what it left.
"""

import contextlib
import io
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.daily_run import ingest_reference, run_day
from fbloop_assets.definitions import defs
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.defs.weights.assets import weights_evaluation
from fbloop_assets.defs.weights.promotion import canary_review, production_weights
from fbloop_assets.lib.common.config import load_config
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.dataset.build import build_dataset
from fbloop_assets.lib.dataset.derivation import derivation_code_version
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.serving.slate_log import SlateLog
from fbloop_assets.lib.serving.suggest import Arms, log_served, serve_arms
from fbloop_assets.lib.weights.decisions import Decisions
from fbloop_assets.lib.weights.handoffs import CandidateRecord
from fbloop_assets.lib.weights.registry import INITIAL, Registry, WeightsVersion
from fbloop_assets.simulate import SimParams, Simulation
from fbloop_tests.conftest import ProjectRun, project_env

LOOP_CONFIG = """
[attribution_windows_days]
conversion = 2.0
[dataset]
window_days = 3
[guards.evidence]
min_records = 500
min_labeled = 20
min_segment_records = 50
[guards.regression]
snips_tolerance = 0.5
[canary]
share = 0.5
days = 2
min_slates = 20
tolerance = 0.5
"""
LAST_DAY = date(2026, 1, 6)


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectRun]:
    root = tmp_path_factory.mktemp("loop")
    env = project_env(root, LOOP_CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["demo", "--days", "6", "--seed", "7", "--signals-per-day", "20000", "--json"])
        assert code == 0
        yield ProjectRun(root, json.loads(out.getvalue()), env)


@pytest.fixture
def in_loop_env(loop_run: ProjectRun, monkeypatch: pytest.MonkeyPatch) -> ProjectRun:
    for k, v in loop_run.env.items():
        monkeypatch.setenv(k, v)
    return loop_run


def test_demo_reports_every_day_and_moves_production(loop_run: ProjectRun) -> None:
    report = loop_run.report
    assert [d["day"] for d in report["days"]] == [f"2026-01-0{i}" for i in range(1, 7)]
    assert report["production_changes"] >= 1
    assert report["final"]["version"] != INITIAL.version
    # no dataset before attribution windows have closed: nothing to learn from, production stays
    assert report["days"][0]["dataset_records"] == 0 and not report["days"][0]["promoted"]
    assert report["days"][0]["reason"] == "no candidate today"
    promoted = [d for d in report["days"] if d["promoted"]]
    assert all(d["ndcg_at_5"] is not None and d["true_ndcg_at_5"] > 0 for d in promoted)
    # every day is served by the aliases as the loop of the day before left them
    for before, after in zip(report["days"], report["days"][1:], strict=False):
        assert after["served_by"]["production"] == before["production"]
        assert after["served_by"].get("canary", "none") == before["canary"]
    history = Registry.of(loop_run.lake).history("production")
    assert history[-1].to_version == report["final"]["version"]


def test_served_slates_carry_the_version_that_served_them(loop_run: ProjectRun) -> None:
    lake = loop_run.lake
    for day in loop_run.report["days"]:
        recs = pl.read_parquet(lake.table_path("raw_recommendations", date.fromisoformat(day["day"])))
        assert sorted(recs["weights_version"].unique().to_list()) == sorted(day["served_by"].values())
        assert recs["propensity"].is_between(0, 1, closed="right").all()


def test_suggest_after_the_run_uses_the_promoted_version_and_ranks_differently(
    in_loop_env: ProjectRun, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = in_loop_env.lake
    production = Registry.of(lake).production()
    context = ScoringContext.from_lake(lake, LAST_DAY)
    changed = [
        c
        for c in sorted(context.campaigns)
        if context.rank(c, production.weights, 10)["creator_id"].to_list()
        != context.rank(c, INITIAL.weights, 10)["creator_id"].to_list()
    ]
    assert changed, "the promoted weights rank no campaign differently from the hand-set default"
    assert main(["suggest", "--campaign", changed[0], "--k", "5", "--seed", "3", "--json"]) == 0
    slate = json.loads(capsys.readouterr().out)
    # a canary runs at the end of the demo: the request id's hash picks the arm
    arms = {"production": production.version, "canary": Registry.of(lake).current("canary")}
    assert slate["weights_version"] == arms[slate["arm"]] and production.version != INITIAL.version
    assert [r["rank"] for r in slate["slate"]] == [1, 2, 3, 4, 5]
    logged = SlateLog(open_data_store(lake.root)).get(slate["request_id"])  # committed before printing
    assert logged is not None and logged["weights_version"].unique().to_list() == [slate["weights_version"]]
    assert logged["creator_id"].to_list() == [r["creator_id"] for r in slate["slate"]]


def test_a_worse_candidate_is_not_promoted_and_the_day_stays_green(
    loop_run: ProjectRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A day not decided yet (day 7, in a copy) whose candidate is replaced by a worse one: a normal
    # "not promoted" day, so the run succeeds and production_weights records why production stayed.
    root = tmp_path / "copy"
    shutil.copytree(loop_run.root, root)
    for k, v in loop_run.env.items():
        monkeypatch.setenv(k, v.replace(str(loop_run.root), str(root)))
    lake, config = Lake(root / "data"), load_config()
    registry = Registry.of(lake)
    before, moves = registry.production_before(LAST_DAY + timedelta(days=1)), len(registry.history())
    day = LAST_DAY + timedelta(days=1)
    sim = Simulation(lake.root, 7, date(2026, 1, 1), replace(SimParams(), signals_per_day=20_000))
    deciding = {"candidate_weights", "weights_evaluation", "canary_review", "production_weights"}
    with dg.DagsterInstance.get() as instance:

        def server(day: date, requests: pl.DataFrame) -> tuple[pl.DataFrame, list[Path]]:
            ingest_reference(day, instance)
            arms = Arms.current(registry, config.canary.share)
            context = ScoringContext.from_lake(lake, day)
            rng = np.random.default_rng(1)
            served = serve_arms(context, arms, requests, 10, config.serving.temperature, rng)
            return served, log_served(lake, served, "suggest-test")

        sim.step(day, server)
        keys = [k for k in defs.resolve_all_asset_keys() if k.path[0] not in deciding | {"feedback_export"}]
        upstream = defs.resolve_job_def("daily_feedback_loop").execute_in_process(
            partition_key=day.isoformat(), instance=instance, asset_selection=keys
        )
        assert upstream.success
        dataset_version = DatasetRecord.read(lake, day).version
        # the opposite of what production believes: every preference reversed
        worse = registry.save(
            WeightsVersion.create({f: -w for f, w in before.weights.items()}, before.version, dataset_version)
        )
        CandidateRecord(worse.version, before.version, dataset_version).write(lake, day)
        result = dg.materialize(
            [weights_evaluation, canary_review, production_weights],
            partition_key=day.isoformat(),
            resources={"fbloop": FbloopResource()},
            instance=instance,
        )
        assert result.success  # not promoted is not a failure
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["no_regression"].passed is False
        assert checks["no_regression"].severity == dg.AssetCheckSeverity.WARN
        assert "NDCG@5" in (checks["no_regression"].description or "")
        assert checks["no_regression"].metadata["partition"].value == day.isoformat()
        assert isinstance(checks["no_regression"].metadata["value/ndcg_at_5/candidate"].value, float)
        (mat,) = result.asset_materializations_for_node("production_weights")
        # (the day's canary review may promote the running canary; the worse candidate goes nowhere)
        assert mat.metadata["candidate"].value == worse.version
        assert "weights_evaluation/no_regression" in str(mat.metadata["reason"].value)
        assert mat.metadata["decided_by"].value == "weights_evaluation/no_regression"
        # materialized again on its own (as from the UI): the recorded decision, replayed
        again = dg.materialize(
            [production_weights],
            partition_key=day.isoformat(),
            resources={"fbloop": FbloopResource()},
            instance=instance,
        )
    (replayed,) = again.asset_materializations_for_node("production_weights")
    assert replayed.metadata["replayed"].value is True
    assert replayed.metadata["reason"].value == mat.metadata["reason"].value
    assert worse.version not in {m.to_version for m in registry.history()[moves:]}  # not even staged
    assert "no_regression" in registry.failed_checks(worse.version)  # exposure concentrates too


def test_the_same_inputs_give_the_same_dataset_version(in_loop_env: ProjectRun) -> None:
    lake, config = in_loop_env.lake, load_config()
    first = build_dataset(lake, LAST_DAY, config)
    again = build_dataset(lake, LAST_DAY, config)
    assert first.version == again.version and first.version.startswith("ds-")
    # the same inputs derived by changed code are a new version, not the old folder
    assert first.manifest["derivation_code_version"] == derivation_code_version()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("fbloop_assets.lib.dataset.build.derivation_code_version", lambda: "dc-changed")
        assert build_dataset(lake, LAST_DAY, config).version != first.version
    manifest = first.manifest
    assert manifest["record_count"] == first.examples().height > 0
    assert manifest["serving_days"] == ["2026-01-02", "2026-01-03", "2026-01-04"]
    assert set(manifest["partitions_read"]) >= {"normalized_feedback", "raw_recommendations"}
    examples = first.examples()
    assert examples["recommendation_id"].is_unique().all()
    assert examples["holdout"].mean() == pytest.approx(0.3, abs=0.05)
    assert not np.isnan(examples["niche_match"].to_numpy()).any()


def test_evaluate_compares_any_weights_with_production(
    in_loop_env: ProjectRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
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


def test_the_canary_walks_from_staging_to_production_on_its_share_of_requests(loop_run: ProjectRun) -> None:
    registry = Registry.of(loop_run.lake)
    moves = registry.history()
    first_canary = next(m for m in moves if m.alias == "canary" and m.to_version)
    staged = next(m for m in moves if m.alias == "staging" and m.to_version == first_canary.to_version)
    assert staged.id < first_canary.id and staged.day == first_canary.day  # staged, then canary
    promoted = next(m for m in moves if m.alias == "production")
    assert promoted.to_version == first_canary.to_version and promoted.reason.startswith("canary passed")
    assert promoted.evidence["verdict"] == "pass" and promoted.evidence["slates"]["canary"] >= 20
    # the canary served about half of the requests on its days, within a binomial tolerance
    served, by_canary = 0, 0
    for day in (date.fromisoformat(first_canary.effective_day), date.fromisoformat(promoted.day or "")):
        slates = pl.read_parquet(loop_run.lake.table_path("raw_recommendations", day)).unique("request_id")
        served += slates.height
        by_canary += int((slates["weights_version"] == first_canary.to_version).sum())
    assert abs(by_canary / served - 0.5) < 3 * math.sqrt(0.25 / served)
    # the UI shows the aliases and their history on production_weights
    decision = Decisions.of(loop_run.lake).get(LAST_DAY, "production_weights")
    assert decision is not None and decision.after["production"] == registry.current("production")


def test_a_planted_regression_is_rolled_back_and_rollback_restores_production(
    loop_run: ProjectRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(loop_run.root, root)
    (root / "fbloop.toml").write_text(LOOP_CONFIG.replace("tolerance = 0.5\n", "tolerance = 0.1\n"))
    for k, v in loop_run.env.items():
        monkeypatch.setenv(k, v.replace(str(loop_run.root), str(root)))
    lake, config = Lake(root / "data"), load_config()
    registry = Registry.of(lake)
    production = registry.production()
    bad = registry.save(
        WeightsVersion.create({f: -w for f, w in production.weights.items()}, production.version, "planted")
    )
    registry.move("canary", bad.version, "planted regression", actor="test", day=LAST_DAY)
    sim = Simulation(lake.root, 7, date(2026, 1, 1), replace(SimParams(), signals_per_day=20_000))

    def server(day: date, requests: pl.DataFrame) -> tuple[pl.DataFrame, list[Path]]:
        ingest_reference(day, instance)
        arms = Arms.current(registry, config.canary.share)
        context = ScoringContext.from_lake(lake, day)
        served = serve_arms(context, arms, requests, 10, config.serving.temperature, np.random.default_rng(1))
        return served, log_served(lake, served, "suggest-test")

    with dg.DagsterInstance.get() as instance:
        for day in (date(2026, 1, 7), date(2026, 1, 8)):
            sim.step(day, server)
            run_day(day, instance)
    rolled_back = next(m for m in registry.history("canary") if m.from_version == bad.version)
    assert rolled_back.to_version is None and rolled_back.day == "2026-01-08"
    assert rolled_back.reason.startswith("canary rolled back: regression")
    assert (
        rolled_back.evidence["verdict"] == "regression"
        and rolled_back.evidence["interval"]["clicks"][1] < -0.1
    )
    assert registry.production().version == production.version

    # by hand: roll production back to the version before it, byte-identically, in one step
    previous = registry.history("production")[-1].from_version
    running = registry.current("canary")
    if running is None:  # whether the loop started a new canary depends on the day's guards
        running = bad.version
        registry.move("canary", running, "a canary for the rollback to stop", actor="test")
    assert main(["weights", "show", previous, "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["rollback", "--reason", "test rollback", "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["moves"]
    assert [(m["alias"], m["from_version"], m["to_version"]) for m in moved] == [
        ("production", production.version, previous),
        ("canary", running, None),  # a running canary stops too
    ]
    assert main(["weights", "show", previous, "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert {k: after[k] for k in ("weights", "features", "parent")} == {
        k: before[k] for k in ("weights", "features", "parent")
    }
    campaign = sorted(ScoringContext.from_lake(lake, LAST_DAY).campaigns)[0]
    assert main(["suggest", "--campaign", campaign, "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights_version"] == previous
    assert main(["weights", "history", "--alias", "production", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert (
        history["moves"][-1]["reason"] == "rollback: test rollback"
        and history["aliases"]["production"] == previous
    )
    # a version that failed a blocking check needs --force, and the move says so
    failed = next(v for v in registry.versions() if registry.failed_checks(v.version))
    assert main(["promote", failed.version, "--to", "staging", "--reason", "try"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["promote", failed.version, "--to", "staging", "--reason", "try", "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["move"]["forced"] is True
