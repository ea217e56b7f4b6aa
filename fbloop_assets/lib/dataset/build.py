"""FeedbackDataset versions: one training example per served recommendation, from complete days.

For loop day D the dataset covers the ``window_days`` serving days that end ``closing`` days
before D, where ``closing`` is the longest attribution window rounded up: a recommendation
served on such a day has had every outcome window close by the end of D, so no example is
judged on half its outcomes. (With ``guards.enabled = false`` the window ends the day before D
instead, as a naive loop's would: the experiment's unguarded arm.) Each example holds

- the recommendation as served (request, campaign, creator, rank, score, propensity, weights
  version, serving day) and its features φ as they were when it was served: computed from the
  campaign and creator snapshots of the serving day and the creator performance known the day
  before, exactly what serving scored it with;
- its outcomes summed inside their attribution windows (impressions, engagements, clicks,
  conversions), counted once per ``feedback_id`` even if a signal was delivered on two days;
- its labels: how many, the share judged useful and the mean confidence; a label that a reviewer
  retracted (undo) on any day up to D counts nowhere, even when the retraction came days after
  the label (`label_retractions` of the days from the window's first serving day to D);
- nothing a guard held back: rows flagged in `held_back_feedback` (a reviewer's flood, bought
  engagement) of those days count nowhere, though they stay in `normalized_feedback`;
- ``holdout``: whether its request falls into the evaluation share (a stable hash of the request
  id), so fitting and offline evaluation never see the same slate.

The version is a content address over the input files (their SHA-256), the derivation
parameters and the derivation code version (`derivation`), so the same inputs give the same
version and a changed derivation a new one. The manifest records the partitions read,
the partitions missing (a gap after the asset's first partition; days before it are listed
apart as before the start), the input file hashes, the parameters, counts and the creation time.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake, days_between, days_ending, write_json, write_parquet
from fbloop_assets.lib.dataset.derivation import derivation_code_version
from fbloop_assets.lib.dataset.examples import (
    OUTCOME_COLUMNS,
    SERVED_COLUMNS,
    build_examples,
    drop_held_back,
    drop_retracted,
    drop_withheld,
    empty_examples,
    feedback_aggregates,
    feedback_masks,
    in_holdout,
    serving_pools,
)

__all__ = [
    "OUTCOME_COLUMNS",
    "SERVED_COLUMNS",
    "FeedbackDataset",
    "build_dataset",
    "build_examples",
    "closing_days",
    "drop_held_back",
    "drop_retracted",
    "drop_withheld",
    "empty_examples",
    "feedback_aggregates",
    "feedback_masks",
    "in_holdout",
    "load_dataset",
    "serving_pools",
    "serving_window",
]

DATASET_VERSION_PREFIX = "ds-"


def closing_days(config: FbloopConfig) -> int:
    """Days after a serving day until all its attribution windows have closed."""
    return math.ceil(config.attribution_windows_days.longest().total_seconds() / 86_400)


# Without guards (`guards.enabled = false`) the loop learns from the freshest serving days, one
# day old, as a naive loop would: their outcomes are still arriving. The completeness guard is what
# makes the dataset wait for every attribution window to close.
UNGUARDED_CLOSING_DAYS = 1


def window_closing_days(config: FbloopConfig) -> int:
    """Days between a dataset's last serving day and its loop day."""
    return closing_days(config) if config.guards.enabled else UNGUARDED_CLOSING_DAYS


def serving_window(day: date, config: FbloopConfig) -> list[date]:
    """The serving days that loop day ``day`` learns from, oldest first (complete ones, when guarded)."""
    last = day - timedelta(days=window_closing_days(config))
    return days_ending(last, config.dataset.window_days)


@dataclass(frozen=True)
class FeedbackDataset:
    version: str
    examples_path: Path
    manifest: dict[str, Any]

    def examples(self) -> pl.DataFrame:
        return pl.read_parquet(self.examples_path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def derivation_parameters(day: date, config: FbloopConfig) -> dict[str, Any]:
    return {
        "loop_day": day.isoformat(),
        "window_days": config.dataset.window_days,
        "closing_days": window_closing_days(config),
        "holdout_share": config.dataset.holdout_share,
        "attribution_windows_days": {e: getattr(config.attribution_windows_days, e) for e in OUTCOME_COLUMNS},
    }


def input_partitions(day: date, config: FbloopConfig) -> dict[str, list[date]]:
    """Which daily partitions of which assets a dataset for loop day ``day`` reads."""
    days = serving_window(day, config)
    return {
        "raw_recommendations": days,
        "normalized_feedback": days_between(days[0], day),
        "campaigns": days,
        "creators": days,
        # suggestions served on day S were scored with the performance of S - 1
        "creator_performance": [d - timedelta(days=1) for d in days],
        # a label in the window may be retracted any day until D: those retractions apply too
        "label_retractions": days_between(days[0], day),
        # and rows a guard held back, on the day they arrived
        "held_back_feedback": days_between(days[0], day),
    }


def build_dataset(lake: Lake, day: date, config: FbloopConfig) -> FeedbackDataset:
    """Build (or find) the FeedbackDataset version of loop day ``day``."""
    days = serving_window(day, config)
    partitions = input_partitions(day, config)
    present: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    before_start: dict[str, list[str]] = {}
    hashes: dict[str, str] = {}
    for asset, wanted in partitions.items():
        first = lake.first_partition(asset)
        for d in wanted:
            path = lake.table_path(asset, d)
            if path.exists():
                present.setdefault(asset, []).append(d.isoformat())
                hashes[lake.relative(path)] = file_sha256(path)
            elif first is not None and d < first:  # before the loop ever ran: absent, not missing
                before_start.setdefault(asset, []).append(d.isoformat())
            else:
                missing.setdefault(asset, []).append(d.isoformat())
    params = derivation_parameters(day, config)
    code = derivation_code_version()
    canonical = json.dumps({"inputs": hashes, "parameters": params, "code": code}, sort_keys=True)
    version = DATASET_VERSION_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    folder = lake.root / "datasets" / version
    examples_path = folder / "examples.parquet"
    manifest_path = folder / "manifest.json"
    if manifest_path.exists() and examples_path.exists():
        return FeedbackDataset(version, examples_path, json.loads(manifest_path.read_text()))

    def scan(asset: str) -> pl.LazyFrame | None:
        paths = [lake.table_path(asset, date.fromisoformat(d)) for d in present.get(asset, [])]
        return pl.scan_parquet(paths) if paths else None

    recs, feedback = scan("raw_recommendations"), scan("normalized_feedback")
    if recs is None or feedback is None:
        examples = empty_examples()
    else:
        examples = build_examples(
            recs,
            feedback,
            serving_pools(lake, days),
            days,
            config.dataset.holdout_share,
            scan("label_retractions"),
            scan("held_back_feedback"),
        )
    write_parquet(examples, examples_path)
    manifest = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "serving_days": [d.isoformat() for d in days],
        "partitions_read": present,
        "partitions_missing": missing,
        "partitions_before_start": before_start,
        "input_files": hashes,
        "derivation_parameters": params,
        "derivation_code_version": code,
        "record_count": examples.height,
        "labeled_count": int((examples["n_labels"] > 0).sum()),
        "labels_retracted": _count(scan("label_retractions")),
        "rows_held_back": _count(scan("held_back_feedback")),
        "outcomes_total": int(examples["outcome_rows"].sum()),
        "outcomes_late": int(examples["late_outcome_rows"].sum()),
        "holdout_count": int(examples["holdout"].sum()),
        "without_features": int(examples["niche_match"].null_count()),
        "records_by_serving_day": {
            str(d): n for d, n in examples.group_by("serving_day").len().sort("serving_day").iter_rows()
        },
    }
    write_json(manifest, manifest_path)
    return FeedbackDataset(version, examples_path, manifest)


def _count(frame: pl.LazyFrame | None) -> int:
    return int(frame.select(pl.len()).collect().item()) if frame is not None else 0


def load_dataset(lake: Lake, version: str) -> FeedbackDataset:
    folder = lake.root / "datasets" / version
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"unknown dataset version {version!r} (no {manifest_path})")
    return FeedbackDataset(version, folder / "examples.parquet", json.loads(manifest_path.read_text()))
