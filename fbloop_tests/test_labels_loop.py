"""Labels from the store reach the next cycle: raw_labels by recording day, retractions honoured."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.defs.feedback.assets import feedback_and_quarantine
from fbloop_assets.defs.ingest.assets import ingestion_assets
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import parse_config
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.dataset.build import build_dataset
from fbloop_assets.lib.labeling.accounts import Reviewer
from fbloop_assets.lib.labeling.imports import import_labels
from fbloop_tests.labeling import Clock, label_store
from fbloop_tests.tiny_world import DAY, write_tiny_day

NEXT_DAY = "2026-01-06"


def _materialize(lake: Lake, day: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [*ingestion_assets, feedback_and_quarantine],
        partition_key=day,
        resources={"fbloop": FbloopResource(data_dir=str(lake.root))},
        instance=instance,
    )
    assert result.success
    return result


def test_store_labels_flow_into_the_dataset_and_retractions_keep_labels_out(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    write_tiny_day(lake)
    clock = Clock(datetime(2026, 1, 5, 22, tzinfo=UTC))
    store = label_store(open_data_store(lake.root), lake, clock)
    alice = Reviewer("alice", "reviewer")
    retracted_next_day = store.record_label("alice", "rec-2", "useful", 0.9)
    store.record_label("bob", "rec-2", "not_useful", 0.7)
    retracted_same_day = store.record_label("alice", "rec-3", "useful", 0.8)
    csv = tmp_path / "late.csv"
    csv.write_text(
        "label_id,reviewer_id,recommendation_id,label_value,confidence,labeled_at,comment\n"
        "x1,carol,rec-gone,useful,1,2026-01-05T20:00:00Z,\n"
    )
    assert import_labels(store, csv, "csv").quarantined == 1
    clock.set("2026-01-05T23:00:00+00:00")
    store.retract(retracted_same_day.label_id, alice)
    clock.set("2026-01-06T09:00:00+00:00")
    store.retract(retracted_next_day.label_id, alice)

    with dg.instance_for_test() as instance:
        first = _materialize(lake, DAY, instance)
        _materialize(lake, NEXT_DAY, instance)
    meta = {
        m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()}
        for m in first.get_asset_materialization_events()
        for m in [m.materialization]
    }
    raw = meta["raw_labels"]
    assert (raw["dagster/row_count"], raw["store_labels"], raw["store_retractions"]) == (5, 3, 1)
    assert raw["items_labeled_twice"] == 2  # rec-1 (two landing reviewers) and rec-2 (alice, bob)
    assert raw["krippendorff_alpha"] == pytest.approx(-0.5)  # both pairs disagree
    rows = pl.read_parquet(lake.table_path("raw_labels", date(2026, 1, 5)))
    from_store = rows.filter(pl.col("landing_file") == "label_store")
    assert sorted(from_store["reviewer_id"].to_list()) == ["alice", "alice", "bob"]
    feedback = pl.read_parquet(lake.table_path("normalized_feedback", date(2026, 1, 5)))
    assert feedback.filter(pl.col("kind") == "label").height == 5
    refused = pl.read_parquet(lake.table_path("quarantine", date(2026, 1, 5)))
    imported = refused.filter(pl.col("landing_file").str.starts_with("label_store:import:"))
    assert imported["reason_code"].to_list() == ["unknown_recommendation"]

    # the loop day whose dataset holds serving day 2026-01-05 (one-day window, 7-day closing)
    config = parse_config("[dataset]\nwindow_days = 1\n")
    dataset = build_dataset(lake, date(2026, 1, 12), config)
    examples = (
        dataset.examples().select("recommendation_id", "n_labels", "label_useful").sort("recommendation_id")
    )
    assert examples.rows() == [("rec-1", 2, 0.5), ("rec-2", 1, 0.0), ("rec-3", 0, None)]
    assert dataset.manifest["labels_retracted"] == 2
    assert dataset.manifest["partitions_read"]["label_retractions"] == [DAY, NEXT_DAY]
