"""A day normalized in shards (`dagster.feedback_shards`) equals the day normalized whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.daily_run import run_day
from fbloop_assets.lib.common.config import FbloopConfig, PrivacyConfig
from fbloop_assets.lib.common.lake import Lake, days_ending, frame_fingerprint, sink_parquet
from fbloop_assets.lib.dataset.examples import OUTCOME_COLUMNS
from fbloop_assets.lib.feedback.normalize import normalize_plan
from fbloop_assets.lib.feedback.shards import (
    ShardFiles,
    ShardMismatch,
    combined_plan,
    in_shard,
    write_summary,
)
from fbloop_assets.lib.weights.decisions import Decisions
from fbloop_assets.simulate import simulate
from fbloop_tests.conftest import TEST_KEY_HEX, project_env
from fbloop_tests.test_celery import registry, warehouse

START = date(2026, 1, 1)
DAYS = [START + timedelta(days=i) for i in range(3)]
PROJECT = Path(__file__).resolve().parents[1]
# one-day attribution windows and datasets: each day from the second has a dataset to fit and decide on
WINDOWS = "[attribution_windows_days]\n" + "".join(f"{e} = 1.0\n" for e in OUTCOME_COLUMNS)


def test_shards_split_every_row_once_and_keep_a_recommendation_together() -> None:
    ids = [f"rec-{i % 97}" for i in range(3000)] + [None, None]
    frame = pl.LazyFrame({"recommendation_id": ids, "row": range(len(ids))})
    parts = [in_shard(frame, i, 4).collect() for i in range(4)]
    assert sorted(pl.concat(parts)["row"].to_list()) == list(range(len(ids)))
    homes = [set(p["recommendation_id"].to_list()) for p in parts]
    assert all(not (a & b) for i, a in enumerate(homes) for b in homes[i + 1 :])
    assert all(p.height > 300 for p in parts)  # the hash spreads the ids
    assert in_shard(frame, 0, 1).collect().equals(frame.collect())


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Three simulated days run whole (one step) in process on the embedded default."""
    root = tmp_path_factory.mktemp("whole")
    lake = Lake(root / "data")
    simulate(lake.root, days=len(DAYS), seed=5, start=START, signals_per_day=1500)
    (root / "fbloop.toml").write_text(WINDOWS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FBLOOP_DATA_DIR", str(lake.root))
        mp.setenv("FBLOOP_CONFIG", str(root / "fbloop.toml"))
        mp.setenv("FBLOOP_PSEUDONYM_KEY", TEST_KEY_HEX)
        with dg.instance_for_test() as instance:
            for day in DAYS:
                run_day(day, instance)
    return lake


@pytest.mark.parametrize("mode", ["pseudonymized", "aggregated"])
def test_the_shards_of_a_day_add_up_to_the_whole_day(whole: Lake, tmp_path: Path, mode: str) -> None:
    day = DAYS[-1]
    config = FbloopConfig(privacy=PrivacyConfig(mode=mode))
    rec_days = days_ending(day, config.ingestion.recommendation_lookback_days)
    recs = pl.scan_parquet(
        [p for d in rec_days if (p := whole.table_path("raw_recommendations", d)).exists()]
    )
    signals = pl.scan_parquet(whole.table_path("raw_outcome_signals", day))
    labels = pl.scan_parquet(whole.table_path("raw_labels", day))
    earlier = pl.scan_parquet([whole.table_path("raw_outcome_signals", d) for d in DAYS[:-1]])
    key = bytes.fromhex(TEST_KEY_HEX)
    one = normalize_plan(day, recs, signals, labels, config, key, earlier.select("signal_id"))
    staging = Lake(tmp_path)
    for i in range(3):
        files = ShardFiles.of(staging, day, i, 3)
        cut = [in_shard(f, i, 3) for f in (recs, signals, labels, earlier)]
        plan = normalize_plan(day, *cut[:3], config, key, cut[3].select("signal_id"))
        sink_parquet(plan.feedback, files.feedback)
        write_summary(files, plan)
    three = combined_plan(staging, day, 3)
    whole_rows = one.feedback.collect()
    assert whole_rows.height > 300
    assert three.feedback.collect().sort("feedback_id").equals(whole_rows.sort("feedback_id"))
    n, incomplete = whole_rows.height, int((~whole_rows["attribution_complete"]).sum())
    assert three.stats(n, incomplete) == one.stats(n, incomplete)
    assert three.rejects.sort("reason", "record").equals(one.rejects.sort("reason", "record"))
    # a shard missing, or split by another polars version, is refused
    summary = ShardFiles.of(staging, day, 1, 3).summary
    changed = json.loads(summary.read_text()) | {"polars": "0.0.1"}
    summary.write_text(json.dumps(changed))
    with pytest.raises(ShardMismatch, match="different polars versions"):
        combined_plan(staging, day, 3)
    summary.unlink()
    with pytest.raises(ShardMismatch, match=r"shards \[2\] of 3 .* not written"):
        combined_plan(staging, day, 3)


def _tables(lake: Lake) -> tuple[dict[str, str], list[str]]:
    """Row hashes of the warehouse's and rejects' tables by path, and of the datasets' examples."""
    tables = warehouse(lake)
    datasets = sorted(h for path, h in tables.items() if path.startswith("datasets/"))
    return {p: h for p, h in tables.items() if not p.startswith("datasets/")}, datasets


def _decisions(lake: Lake) -> list[tuple]:
    """Each day's decisions (outcome, the checks that failed) and the registry's alias history, each
    version named by its weights, not its content address."""
    versions, moves = registry(lake)
    weights = {v[0]: v[3] for v in versions} | {None: None}
    decided = [
        (
            d.day,
            d.stage,
            d.outcome,
            weights.get(d.candidate),
            [(c["asset"], c["name"]) for c in d.failed_checks],
        )
        for d in Decisions.of(lake).all()
    ]
    history = [
        (alias, day, effective, weights[old], weights[new]) for alias, day, effective, old, new, _ in moves
    ]
    return decided + history


@pytest.mark.slow
def test_the_daily_job_in_two_shards_writes_what_one_step_writes(whole: Lake, tmp_path: Path) -> None:
    env = os.environ | project_env(tmp_path, WINDOWS + "[dagster]\nfeedback_shards = 2\n")
    lake = Lake(Path(env["FBLOOP_DATA_DIR"]))
    simulate(lake.root, days=len(DAYS), seed=5, start=START, signals_per_day=1500)
    for day in DAYS:
        subprocess.run(
            [sys.executable, "-m", "fbloop_assets.cli", "run", "--date", day.isoformat(), "--json"],
            env=env,
            cwd=PROJECT,
            check=True,
            capture_output=True,
        )
    # every table holds the same rows; the shards' rows come in another order, so the files' bytes
    # differ and with them the content addresses (dataset and weights versions) built on them
    assert _tables(lake) == _tables(whole)
    assert _decisions(lake) == _decisions(whole)
    assert len(_decisions(whole)) >= 2 * len(DAYS)  # two stages decide every day
    assert len(set(_tables(whole)[1])) >= 2  # datasets with examples, not only empty ones
    assert not list((lake.root / "staging").rglob("*.parquet"))  # the shards' copies are gone
    day = DAYS[-1].isoformat()
    feedback = frame_fingerprint(
        pl.scan_parquet(lake.root / "warehouse" / "normalized_feedback" / f"{day}.parquet")
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        with dg.DagsterInstance.get() as instance:
            for shard in ("feedback_shard_1", "feedback_shard_2"):
                record = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(shard), asset_partitions=[day]), limit=1
                ).records
                assert record and record[0].asset_materialization is not None
                assert record[0].asset_materialization.metadata["dagster/row_count"].value > 500
            gathered = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("normalized_feedback"), asset_partitions=[day]),
                limit=1,
            ).records[0]
            assert gathered.asset_materialization is not None
            assert (gathered.asset_materialization.tags or {})["dagster/data_version"] == feedback
