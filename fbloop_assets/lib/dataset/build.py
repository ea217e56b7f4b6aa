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

The version is a content address over the input files (their SHA-256) and the derivation
parameters, so the same inputs give the same version. The manifest records the partitions read,
the partitions missing (a gap after the asset's first partition; days before it are listed
apart as before the start), the input file hashes, the parameters, counts and the creation time.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake, days_between, days_ending, write_json, write_parquet
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.scoring.features import FEATURES

OUTCOME_COLUMNS = {
    "impression": "impressions",
    "engagement": "engagements",
    "click": "clicks",
    "conversion": "conversions",
}
SERVED_COLUMNS = (
    "recommendation_id",
    "request_id",
    "campaign_id",
    "creator_id",
    "rank",
    "score",
    "propensity",
    "weights_version",
    "served_at",
)
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


def in_holdout(request_ids: pl.Series, share: float) -> pl.Series:
    """A stable pseudo-random split by request id (CRC-32, not Python's salted hash)."""
    buckets = np.array([zlib.crc32(r.encode()) % 10_000 for r in request_ids.to_list()], dtype=np.int64)
    return pl.Series("holdout", buckets < round(share * 10_000))


def serving_pools(lake: Lake, days: list[date]) -> pl.DataFrame:
    """Every eligible (serving day, campaign, creator) with φ as serving computed it that day."""
    frames = []
    for day in days:
        try:
            context = ScoringContext.from_lake(lake, day)
        except FileNotFoundError:
            continue
        for campaign_id in context.campaigns:
            ids, phi = context.pool(campaign_id)
            frames.append(
                pl.DataFrame(
                    {"serving_day": day, "campaign_id": campaign_id, "creator_id": ids}
                ).with_columns(pl.DataFrame(phi, schema=list(FEATURES), orient="row"))
            )
    schema = {"serving_day": pl.Date, "campaign_id": pl.String, "creator_id": pl.String} | {
        f: pl.Float64 for f in FEATURES
    }
    return pl.concat([pl.DataFrame(schema=schema), *frames], how="vertical_relaxed").cast(schema)  # type: ignore[arg-type]


def feedback_masks() -> list[pl.Expr]:
    """Per feedback row: its contribution to each outcome sum and to the label columns.

    An outcome counts only inside its attribution window (``event_at <= attribution_closes_at``).
    Masking rows first and aggregating with plain sums is much faster than filters inside `agg`.
    """
    in_window = pl.col("event_at") <= pl.col("attribution_closes_at")
    is_label = pl.col("kind") == "label"
    return [
        *(
            pl.when((pl.col("event_type") == e) & in_window).then(pl.col("value")).otherwise(0.0).alias(c)
            for e, c in OUTCOME_COLUMNS.items()
        ),
        is_label.alias("_label"),
        pl.when(is_label).then(pl.col("value")).alias("_useful"),
        pl.when(is_label).then(pl.col("confidence")).alias("_confidence"),
    ]


def feedback_aggregates() -> list[pl.Expr]:
    """Per recommendation, over `feedback_masks`: outcome sums, label count, share useful, confidence."""
    return [
        *(pl.col(c).sum() for c in OUTCOME_COLUMNS.values()),
        pl.col("_label").sum().cast(pl.Int64).alias("n_labels"),
        pl.col("_useful").mean().alias("label_useful"),
        pl.col("_confidence").mean().alias("label_confidence"),
    ]


def drop_retracted(feedback: pl.LazyFrame, retractions: pl.LazyFrame | None) -> pl.LazyFrame:
    """``feedback`` without the labels that a retraction (`label_retractions` rows) names."""
    if retractions is None:
        return feedback
    retracted = retractions.select(pl.format("label:{}", "label_id").alias("feedback_id")).unique()
    return feedback.join(retracted, on="feedback_id", how="anti", maintain_order="left")


def drop_held_back(feedback: pl.LazyFrame, held_back: pl.LazyFrame | None) -> pl.LazyFrame:
    """``feedback`` without the rows a guard held back (`held_back_feedback` rows)."""
    if held_back is None:
        return feedback
    held = held_back.select("feedback_id").unique()
    return feedback.join(held, on="feedback_id", how="anti", maintain_order="left")


def drop_withheld(
    feedback: pl.LazyFrame, retractions: pl.LazyFrame | None, held_back: pl.LazyFrame | None
) -> pl.LazyFrame:
    """``feedback`` without retracted labels and without the rows a guard held back."""
    return drop_held_back(drop_retracted(feedback, retractions), held_back)


def build_examples(
    recommendations: pl.LazyFrame,
    feedback: pl.LazyFrame,
    pools: pl.DataFrame,
    days: list[date],
    holdout_share: float,
    retractions: pl.LazyFrame | None = None,
    held_back: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """One row per recommendation served on ``days``, with φ as served, outcomes and labels.

    Labels named in ``retractions`` and rows a guard held back (``held_back``) are left out.
    ``outcome_rows`` and ``late_outcome_rows`` count each recommendation's outcome rows and those
    that arrived after their attribution window closed (left out of the sums).
    """
    recs = (
        recommendations.select(SERVED_COLUMNS)
        .with_columns(pl.col("served_at").dt.date().alias("serving_day"))
        .filter(pl.col("serving_day").is_in(days))
        .unique("recommendation_id", keep="first")
    )
    served = feedback.join(recs.select("recommendation_id"), on="recommendation_id", how="semi")
    rows = drop_withheld(served, retractions, held_back).unique("feedback_id", keep="first")
    is_outcome = pl.col("kind") == "outcome"
    late = is_outcome & (pl.col("event_at") > pl.col("attribution_closes_at"))
    outcomes = (
        rows.select("recommendation_id", *feedback_masks(), is_outcome.alias("_outcome"), late.alias("_late"))
        .group_by("recommendation_id")
        .agg(
            *feedback_aggregates(),
            pl.col("_outcome").sum().cast(pl.Int64).alias("outcome_rows"),
            pl.col("_late").sum().cast(pl.Int64).alias("late_outcome_rows"),
        )
    )
    examples = (
        recs.join(outcomes, on="recommendation_id", how="left")
        .join(pools.lazy(), on=["serving_day", "campaign_id", "creator_id"], how="left")
        .with_columns(
            *(pl.col(c).fill_null(0.0) for c in OUTCOME_COLUMNS.values()),
            *(pl.col(c).fill_null(0) for c in ("n_labels", "outcome_rows", "late_outcome_rows")),
        )
        .sort("served_at", "request_id", "rank")
        .collect()
    )
    return examples.with_columns(in_holdout(examples["request_id"], holdout_share))


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
    canonical = json.dumps({"inputs": hashes, "parameters": params}, sort_keys=True)
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


def empty_examples() -> pl.DataFrame:
    schema: dict[str, Any] = {
        "recommendation_id": pl.String,
        "request_id": pl.String,
        "campaign_id": pl.String,
        "creator_id": pl.String,
        "rank": pl.Int64,
        "score": pl.Float64,
        "propensity": pl.Float64,
        "weights_version": pl.String,
        "served_at": pl.Datetime("us", "UTC"),
        "serving_day": pl.Date,
        **{c: pl.Float64 for c in OUTCOME_COLUMNS.values()},
        "n_labels": pl.Int64,
        "label_useful": pl.Float64,
        "label_confidence": pl.Float64,
        "outcome_rows": pl.Int64,
        "late_outcome_rows": pl.Int64,
        **{f: pl.Float64 for f in FEATURES},
        "holdout": pl.Boolean,
    }
    return pl.DataFrame(schema=schema)
