"""Audit trails on a real run, with Dagster and fbloop's store on SQLite and on PostgreSQL."""

import json
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.demo import run_demo
from fbloop_assets.lib.common.config import load_config
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.dataset.build import load_dataset
from fbloop_assets.lib.weights.registry import Registry

CONFIG = """
[attribution_windows_days]
conversion = 2.0
[dataset]
window_days = 2
[guards.evidence]
min_records = 100
min_labeled = 5
min_segment_records = 10
"""
START = date(2026, 1, 1)


def _audit(lake: Lake, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_demo(
        lake.root,
        load_config(),
        days=4,
        seed=11,
        start=START,
        signals_per_day=10_000,
        instance=instance,
        progress=lambda _: None,
    )
    registry = Registry.of(lake)
    version = report["days"][-1]["candidate"]
    assert version and version.startswith("w-")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dg.DagsterInstance, "get", staticmethod(lambda: instance))
        assert main(["audit", "weights", version, "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    dataset = load_dataset(lake, registry.load(version).dataset_version or "")
    manifest = dataset.manifest
    # exactly the partitions the dataset read, each with the run and materialization that wrote it
    listed = {(p["asset"], p["partition"]) for p in audit["dataset"]["partitions"]}
    assert listed == {(a, d) for a, days in manifest["partitions_read"].items() for d in days}
    runs = {r.run_id for r in instance.get_runs()}
    unknown = [p for p in audit["dataset"]["partitions"] if p["run_id"] not in runs or not p["storage_id"]]
    assert not unknown
    assert audit["dataset"]["run_id"] in runs
    # exactly the labels that went in: as many as the dataset's examples count
    labels = audit["dataset"]["label_ids"]
    assert len(labels) == len(set(labels)) == int(dataset.examples()["n_labels"].sum()) > 0
    assert sum(audit["dataset"]["labels_by_reviewer"].values()) == len(labels)
    assert audit["dataset"]["consent_exclusions"] > 0
    assert audit["evaluations"] and {c["name"] for c in audit["evaluations"][-1]["checks"]} >= {
        "no_regression"
    }
    # and back: the label and the partition lead to the version
    assert main(["audit", "label", labels[0], "--json"]) == 0
    by_label = json.loads(capsys.readouterr().out)
    assert dataset.version in by_label["datasets"]
    assert version in {v["version"] for v in by_label["weights_versions"]}
    day = manifest["partitions_read"]["raw_recommendations"][0]
    assert main(["audit", "partition", day, "--json"]) == 0
    by_day = json.loads(capsys.readouterr().out)
    assert version in {v["version"] for v in by_day["weights_versions"]}
    assert main(["audit", "label", "no-such-label", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights_versions"] == []
    # a day after the last one fed nothing
    assert main(["audit", "partition", "2026-02-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"] == []
    assert pl.read_parquet(dataset.examples_path).height == manifest["record_count"]


@pytest.fixture
def audit_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    (tmp_path / "fbloop.toml").write_text(CONFIG)
    monkeypatch.setenv("FBLOOP_CONFIG", str(tmp_path / "fbloop.toml"))
    return Lake(tmp_path / "data")


def test_audit_both_directions_on_sqlite(audit_env: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    with dg.instance_for_test() as instance:
        _audit(audit_env, instance, capsys)


@pytest.mark.postgres
def test_audit_both_directions_on_postgres(
    audit_env: Lake,
    postgres_url: str,
    fresh_postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FBLOOP_DATABASE_URL", fresh_postgres_url)  # the registry on PostgreSQL too
    overrides = {"storage": {"postgres": {"postgres_url": postgres_url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert "Postgres" in type(instance.event_log_storage).__name__
        _audit(audit_env, instance, capsys)
    assert Registry.of(audit_env).engine.dialect.name == "postgresql"
