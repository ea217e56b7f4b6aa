"""The anonymized training export: one row per served recommendation, for ML engineers.

`export_training_pairs` reads the `normalized_feedback` partitions of a window of days, counts
each feedback row once (by ``feedback_id``: a signal re-delivered on a later day counts once, the
earliest delivery wins), and aggregates them per recommendation into a *training pair*:

- the recommendation as served: ``recommendation_id, request_id, campaign_id, creator_id, rank,
  score, propensity, weights_version, served_at``;
- its outcomes, summed inside their attribution windows (``event_at <= attribution_closes_at``):
  ``impressions, engagements, clicks, conversions``;
- its labels: ``n_labels``, ``label_useful`` (share judged useful, empty without labels) and
  ``label_confidence`` (mean reviewer confidence);
- ``outcomes_complete``: every outcome row's attribution window had closed by the end of
  ``end_day``, so later deliveries cannot change the sums.

Labels their reviewer retracted and rows a guard held back (`held_back_feedback`) of the days
read are left out (``withheld``). Nothing about audience members leaves: subject keys, age
buckets, subject countries and reviewer ids are aggregated away (``anonymized`` counts the rows
of exported pairs that carried a subject key or age bucket). Rows that cannot be exported (no
feedback or recommendation id, a missing value, a negative outcome value)
are counted as ``errors`` with a sample of reasons; pairs with fewer than ``min_feedback_fields``
of the five feedback fields (the four outcomes non-zero, any label) are ``skipped``.

The file ``feedback_training_YYYYMMDD_HHMMSS.{csv,parquet}`` (UTC time of the export) is written
atomically with permissions 0640. This module computes no features and never imports Dagster.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from fbloop_assets.lib.common.lake import Lake, atomic_path, days_ending
from fbloop_assets.lib.dataset.build import (
    OUTCOME_COLUMNS,
    SERVED_COLUMNS,
    drop_withheld,
    feedback_aggregates,
    feedback_masks,
)
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA
from fbloop_assets.lib.ingest.day import day_bounds

FORMATS = ("csv", "parquet")
FEEDBACK_FIELDS = (*OUTCOME_COLUMNS.values(), "label")  # what --min-feedback-fields counts
EXPORT_SCHEMA: dict[str, pl.DataType] = {
    **{c: FEEDBACK_SCHEMA[c] for c in SERVED_COLUMNS},  # served_at: RFC 3339 UTC text in CSV
    **{c: pl.Float64() for c in OUTCOME_COLUMNS.values()},
    "n_labels": pl.Int64(),
    "label_useful": pl.Float64(),
    "label_confidence": pl.Float64(),
    "outcomes_complete": pl.Boolean(),
}
EXPORT_COLUMNS = tuple(EXPORT_SCHEMA)
FILE_PERMISSIONS = 0o640
RFC3339_UTC = "%Y-%m-%dT%H:%M:%S%.6fZ"
ERROR_SAMPLE_SIZE = 10
_READ_COLUMNS = (
    "feedback_id",
    "kind",
    "event_type",
    "value",
    "confidence",
    *SERVED_COLUMNS,
    "event_at",
    "subject_key",
    "age_bucket",
    "attribution_closes_at",
    "attribution_complete",
)


@dataclass(frozen=True)
class ExportStats:
    """What one export read, dropped and wrote."""

    total: int  # feedback rows read, duplicates included
    exported: int  # training pairs written
    deduplicated: int  # rows dropped because their feedback_id was already read
    withheld: int  # rows left out: labels retracted by their reviewer, rows a guard held back
    anonymized: int  # rows of exported pairs that carried subject_key or age_bucket
    skipped: int  # pairs with fewer than min_feedback_fields feedback fields
    errors: int  # rows that cannot be exported
    seconds: float
    file: Path
    days_read: list[str]
    days_missing: list[str]
    error_reasons: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The stats as JSON-ready values (the file as a string)."""
        return asdict(self) | {"file": str(self.file)}


def export_file_name(now: datetime, fmt: str) -> str:
    """``feedback_training_YYYYMMDD_HHMMSS.<fmt>``; a naive ``now`` is taken as UTC."""
    utc = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return f"feedback_training_{utc:%Y%m%d_%H%M%S}.{fmt}"


def _valid() -> pl.Expr:
    """Rows that can be exported: ids and a value present, no negative outcome."""
    negative_outcome = (pl.col("kind") == "outcome") & (pl.col("value") < 0)
    present = pl.all_horizontal(pl.col("feedback_id", "recommendation_id", "value").is_not_null())
    return present & ~negative_outcome.fill_null(False)


def _error_reason() -> pl.Expr:
    """Why a row is not `_valid` (the first reason that applies)."""
    return (
        pl.when(pl.col("feedback_id").is_null())
        .then(pl.lit("missing feedback_id"))
        .when(pl.col("recommendation_id").is_null())
        .then(pl.lit("missing recommendation_id"))
        .when(pl.col("value").is_null())
        .then(pl.lit("missing value"))
        .otherwise(pl.lit("negative outcome value"))
    )


def _redelivered(rows: pl.LazyFrame) -> pl.Series:
    """Row numbers (``_row``) whose feedback_id already occurred in an earlier row.

    Hashes first: a row whose hash no other row shares cannot be a duplicate, so the exact
    comparison of ids only runs on the few rows that share a hash (re-deliveries, rare collisions).
    """
    hashed = rows.select("_row", "feedback_id", pl.col("feedback_id").hash().alias("_hash"))
    shared = hashed.group_by("_hash").len().filter(pl.col("len") > 1).select("_hash")
    candidates = (
        hashed.join(shared, on="_hash", how="semi")
        .filter(pl.col("feedback_id").is_not_null())  # rows without an id are errors, not duplicates
        .collect(engine="streaming")
        .sort("_row")
    )
    return candidates.filter(~pl.col("feedback_id").is_first_distinct())["_row"]


def _pairs(valid: pl.LazyFrame, end_of_day: datetime) -> pl.LazyFrame:
    """One row per recommendation, with helper columns ``_fields`` and ``_subject_rows``."""
    closed = pl.col("attribution_complete") | (pl.col("attribution_closes_at") <= pl.lit(end_of_day))
    masked = valid.select(
        *SERVED_COLUMNS,
        *feedback_masks(),
        ((pl.col("kind") == "outcome") & ~closed.fill_null(False)).alias("_open"),
        (pl.col("subject_key").is_not_null() | pl.col("age_bucket").is_not_null()).alias("_subject"),
    )
    pairs = masked.group_by("recommendation_id").agg(
        *(pl.col(c).first() for c in SERVED_COLUMNS if c != "recommendation_id"),  # as served: all equal
        *feedback_aggregates(),
        pl.col("_open").any().not_().alias("outcomes_complete"),
        pl.col("_subject").sum().cast(pl.Int64).alias("_subject_rows"),
    )
    present = [pl.col(c) != 0 for c in OUTCOME_COLUMNS.values()] + [pl.col("n_labels") > 0]
    return pairs.with_columns(pl.sum_horizontal(present).alias("_fields"))


def _write(frame: pl.DataFrame, fmt: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        if fmt == "csv":
            frame.with_columns(pl.col("served_at").dt.to_string(RFC3339_UTC)).write_csv(tmp)
        else:
            frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.chmod(tmp, FILE_PERMISSIONS)  # before the rename: the final file is never wider


def export_training_pairs(
    lake: Lake,
    end_day: date,
    days_back: int,
    min_feedback_fields: int,
    fmt: str,
    out_dir: Path,
    now: datetime,
) -> ExportStats:
    """Export the training pairs of the ``days_back`` days ending at ``end_day`` into ``out_dir``."""
    if days_back < 1:
        raise ValueError(f"days_back must be at least 1, got {days_back}")
    if not 0 <= min_feedback_fields <= len(FEEDBACK_FIELDS):
        raise ValueError(
            f"min_feedback_fields must be between 0 and {len(FEEDBACK_FIELDS)}, got {min_feedback_fields}"
        )
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    started = time.perf_counter()
    days = days_ending(end_day, days_back)
    paths = {d: lake.table_path("normalized_feedback", d) for d in days}
    read = [d for d in days if paths[d].exists()]
    missing = [d.isoformat() for d in days if d not in read]
    # Oldest day first, so that row numbers follow delivery order and the earliest delivery wins.
    scan = pl.scan_parquet([paths[d] for d in read]) if read else pl.DataFrame(schema=FEEDBACK_SCHEMA).lazy()
    rows = scan.select(_READ_COLUMNS).with_row_index("_row")
    _, end_of_day = day_bounds(end_day)

    redelivered = _redelivered(rows)
    unique = rows.filter(~pl.col("_row").is_in(redelivered.implode()))
    kept = drop_withheld(
        unique, lake.scan_tables("label_retractions", read), lake.scan_tables("held_back_feedback", read)
    )
    total, withheld, bad, all_pairs = pl.collect_all(
        [
            scan.select(pl.len()),
            unique.select(pl.len())
            .join(kept.select(pl.len()), how="cross")
            .select(pl.col("len") - pl.col("len_right")),
            kept.filter(~_valid()).select("feedback_id", "kind", "event_type", "value", "recommendation_id"),
            _pairs(kept.filter(_valid()), end_of_day),
        ],
        engine="streaming",
    )
    bad = bad.with_columns(_error_reason().alias("reason"))
    reasons = bad.group_by("reason").len().sort("reason")
    samples = (
        bad.head(ERROR_SAMPLE_SIZE)
        .select(
            pl.format(
                "{}: {} (event_type={}, value={}, recommendation_id={})",
                *(
                    pl.col(c).cast(pl.String).fill_null("null")
                    for c in ("feedback_id", "reason", "event_type", "value", "recommendation_id")
                ),
            )
        )
        .to_series()
    )
    wanted = all_pairs["_fields"] >= min_feedback_fields
    exported = all_pairs.filter(wanted).sort("served_at", "request_id", "rank", "recommendation_id")
    target = out_dir / export_file_name(now, fmt)
    _write(exported.select(EXPORT_COLUMNS).cast(EXPORT_SCHEMA), fmt, target)  # type: ignore[arg-type]
    error_reasons = dict(zip(reasons["reason"].to_list(), reasons["len"].to_list(), strict=True))
    return ExportStats(
        total=int(total.item()),
        exported=exported.height,
        deduplicated=redelivered.len(),
        withheld=int(withheld.item()),
        anonymized=int(exported["_subject_rows"].sum()),
        skipped=int((~wanted).sum()),
        errors=bad.height,
        seconds=round(time.perf_counter() - started, 3),
        file=target,
        days_read=[d.isoformat() for d in read],
        days_missing=missing,
        error_reasons=error_reasons,
        error_samples=samples.to_list(),
    )
