"""Audit trails, both directions: from a weights version to the feedback that shaped it, and from a
label or a day to every dataset and weights version it fed, and whether those served traffic.

The facts come from three places: the registry (versions, evaluations, alias moves), the dataset
manifests (the partitions each version read, with file hashes) and Dagster's event log (the run
and the materialization of each partition that was read), which the caller hands in as an
`EventLog` so that this module needs no Dagster. Dagster keeps one pointer per window
dependency, not the partitions consumed; the manifests record those.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.dataset.build import drop_withheld, load_dataset
from fbloop_assets.lib.weights.registry import AliasMove, Registry

SERVING_ALIASES = ("production", "canary")
# Warehouse tables written as a side output of another asset: whose materialization wrote them.
PRODUCED_BY = {"label_retractions": "raw_labels"}


class EventLog(Protocol):
    def materialization(
        self, asset: str, partition: str, before_storage_id: int | None
    ) -> dict[str, Any] | None:
        """The latest materialization of ``asset``/``partition`` (before a storage id): run id,
        storage id, timestamp and metadata; None if there is none."""
        ...

    def dataset_materialization(self, dataset_version: str, loop_day: str) -> dict[str, Any] | None:
        """The `feedback_dataset` materialization of ``loop_day`` that recorded ``dataset_version``."""
        ...


@dataclass(frozen=True)
class Served:
    """When a version served traffic: one span per alias it held (production or canary)."""

    alias: str
    since: str  # first serving day (effective day of the move)
    until: str | None  # first day it no longer served; None: still serving

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def serving_spans(moves: list[AliasMove], version: str) -> list[Served]:
    """The spans during which ``version`` held a serving alias, from the alias history."""
    spans: list[Served] = []
    for alias in SERVING_ALIASES:
        since: str | None = None
        for move in (m for m in moves if m.alias == alias):
            if move.to_version == version and since is None:
                since = move.effective_day
            elif move.to_version != version and since is not None:
                spans.append(Served(alias, since, move.effective_day))
                since = None
        if since is not None:
            spans.append(Served(alias, since, None))
    return sorted(spans, key=lambda s: s.since)


def _manifests(lake: Lake) -> Iterator[dict[str, Any]]:
    for path in sorted((lake.root / "datasets").glob("*/manifest.json")):
        yield json.loads(path.read_text())


def _partition_files(lake: Lake, manifest: dict[str, Any], asset: str) -> list[Path]:
    return [lake.table_path(asset, date.fromisoformat(d)) for d in manifest["partitions_read"].get(asset, [])]


def dataset_feedback(lake: Lake, manifest: dict[str, Any]) -> pl.DataFrame:
    """The feedback rows a dataset version used: those of its partitions that belong to its
    recommendations, retracted labels and held-back rows left out, once per feedback id (as
    `build_examples` does)."""
    feedback_files = _partition_files(lake, manifest, "normalized_feedback")
    rec_files = _partition_files(lake, manifest, "raw_recommendations")
    if not feedback_files or not rec_files:
        return pl.DataFrame(schema={"feedback_id": pl.String, "kind": pl.String})
    days = [date.fromisoformat(d) for d in manifest["serving_days"]]
    recs = (
        pl.scan_parquet(rec_files)
        .filter(pl.col("served_at").dt.date().is_in(days))
        .select("recommendation_id")
        .unique()
    )
    retraction_files = _partition_files(lake, manifest, "label_retractions")
    retractions = pl.scan_parquet(retraction_files) if retraction_files else None
    held_files = _partition_files(lake, manifest, "held_back_feedback")
    held_back = pl.scan_parquet(held_files) if held_files else None
    rows = pl.scan_parquet(feedback_files).join(recs, on="recommendation_id", how="semi")
    kept = drop_withheld(rows, retractions, held_back)
    return kept.unique("feedback_id", keep="first").collect()


def audit_weights(lake: Lake, registry: Registry, events: EventLog, version: str) -> dict[str, Any]:
    """Everything that shaped ``version`` and everything that happened to it."""
    weights = registry.load(version)
    report: dict[str, Any] = {
        "version": weights.version,
        "parent": weights.parent,
        "code_version": weights.code_version,
        "created_at": weights.created_at,
        "weights": weights.weights,
        "dataset_version": weights.dataset_version,
        "evaluations": [e.__dict__ for e in registry.evaluations(version)],
        "alias_moves": [m.as_dict() for m in registry.moves_of(version)],
        "served": [s.as_dict() for s in serving_spans(registry.history(), version)],
    }
    if not weights.dataset_version or not (lake.root / "datasets" / weights.dataset_version).is_dir():
        report["dataset"] = None  # w0, or a version made by hand
        return report
    dataset = load_dataset(lake, weights.dataset_version)
    manifest = dataset.manifest
    built = events.dataset_materialization(dataset.version, manifest["derivation_parameters"]["loop_day"])
    before = built["storage_id"] if built else None
    partitions = []
    for asset, days in sorted(manifest["partitions_read"].items()):
        for day in days:
            found = events.materialization(PRODUCED_BY.get(asset, asset), day, before)
            partitions.append(
                {
                    "asset": asset,
                    "written_by": PRODUCED_BY.get(asset, asset),
                    "partition": day,
                    "run_id": found["run_id"] if found else None,
                    "storage_id": found["storage_id"] if found else None,
                    "excluded_no_consent": (found or {}).get("metadata", {}).get("excluded_no_consent"),
                }
            )
    feedback = dataset_feedback(lake, manifest)
    outcomes = feedback.filter(pl.col("kind") == "outcome")
    labels = feedback.filter(pl.col("kind") == "label")
    report["dataset"] = {
        "version": dataset.version,
        "run_id": built["run_id"] if built else None,
        "storage_id": before,
        "manifest": manifest,
        "partitions": partitions,
        "signals_by_source_and_type": {
            f"{s}/{t}": n
            for s, t, n in outcomes.group_by("source", "event_type")
            .len()
            .sort("source", "event_type")
            .iter_rows()
        },
        "labels_by_reviewer": dict(labels.group_by("reviewer_id").len().sort("reviewer_id").iter_rows()),
        "label_ids": sorted(f.removeprefix("label:") for f in labels["feedback_id"].to_list()),
        "consent_exclusions": sum(
            p["excluded_no_consent"] or 0 for p in partitions if p["asset"] == "normalized_feedback"
        ),
    }
    return report


def _fed_versions(registry: Registry, datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    history = registry.history()
    fed = []
    for manifest in datasets:
        for version in registry.versions_of_dataset(manifest["version"]):
            fed.append(
                {
                    "version": version,
                    "dataset_version": manifest["version"],
                    "served": [s.as_dict() for s in serving_spans(history, version)],
                }
            )
    return fed


def audit_label(lake: Lake, registry: Registry, label_id: str) -> dict[str, Any]:
    """Every dataset and weights version that label ``label_id`` fed, and whether they served."""
    feedback_id = f"label:{label_id}"
    datasets = [
        m for m in _manifests(lake) if feedback_id in set(dataset_feedback(lake, m)["feedback_id"].to_list())
    ]
    return {
        "label_id": label_id,
        "datasets": [m["version"] for m in datasets],
        "weights_versions": _fed_versions(registry, datasets),
    }


def audit_partition(lake: Lake, registry: Registry, day: date) -> dict[str, Any]:
    """Every dataset and weights version that read any partition of ``day``, and whether they served."""
    key = day.isoformat()
    datasets = [m for m in _manifests(lake) if any(key in days for days in m["partitions_read"].values())]
    return {
        "partition": key,
        "datasets": [
            {
                "version": m["version"],
                "assets": sorted(a for a, days in m["partitions_read"].items() if key in days),
            }
            for m in datasets
        ],
        "weights_versions": _fed_versions(registry, datasets),
    }


AUDIT_KINDS = ("weights", "label", "partition")


def audit(lake: Lake, registry: Registry, events: EventLog | None, kind: str, subject: str) -> dict[str, Any]:
    """The one audit report both `fbloop audit KIND SUBJECT --json` and the `/audit` pages show.

    ``kind``: ``weights`` (a version), ``label`` (a label id) or ``partition`` (a day, YYYY-MM-DD).
    Only a weights audit reads Dagster's event log (``events``). Raises `UnknownVersion` for a
    version the registry lacks and ValueError for a bad day.
    """
    if kind == "weights":
        if events is None:
            raise ValueError("a weights audit needs Dagster's event log")
        return audit_weights(lake, registry, events, subject)
    if kind == "label":
        return audit_label(lake, registry, subject)
    if kind == "partition":
        return audit_partition(lake, registry, date.fromisoformat(subject))
    raise ValueError(f"audit kind must be one of {', '.join(AUDIT_KINDS)}, got {kind!r}")
