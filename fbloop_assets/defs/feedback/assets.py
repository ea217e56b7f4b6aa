"""`normalized_feedback` (one feedback schema, privacy applied) and `quarantine` (every refused row).

Both are written by one step, `feedback_and_quarantine`: the day's quarantine table is written
and materialized before normalized_feedback's blocking checks can stop the run, so a day whose
feedback fails a check still shows every row refused that day.
"""

import shutil
from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import column_schema, counts_table, md_table, partition_day, preview
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import FEEDBACK_SHARDS, SHARD_ASSETS, daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake, days_ending, frame_fingerprint, sink_parquet, write_parquet
from fbloop_assets.lib.common.privacy import personal_data_findings
from fbloop_assets.lib.feedback.data_docs import data_docs_dir
from fbloop_assets.lib.feedback.expectations import FeedbackValidation, validate_feedback
from fbloop_assets.lib.feedback.normalize import NormalizationPlan, normalize_plan
from fbloop_assets.lib.feedback.shards import ShardFiles, ShardMismatch, combined_plan, in_shard
from fbloop_assets.lib.ingest.day import empty_rejects, empty_typed

INGESTION_ASSETS = ("creators", "campaigns", "raw_recommendations", "raw_outcome_signals", "raw_labels")

NORMALIZED_FEEDBACK = """One UTC day of feedback in fbloop's single feedback schema (outcomes and labels).

Joins the day's outcome signals and reviewer labels to the recommendations they belong to
(served within the lookback window), applies privacy (keyed pseudonyms for subject ids, age
buckets, no free text or URLs; subject-level signals without consent are excluded and counted),
removes duplicates by a stable key and marks outcomes whose attribution window is still open
as incomplete (`attribution_complete = false`). Signals and labels that refer to an unknown
recommendation, or happened more than `ingestion.clock_skew_tolerance_minutes` before their
recommendation was served, go to quarantine; within the tolerance `event_at` is set to the
serving time (clock skew), counted as `clamped_clock_skew`. In `aggregated` privacy mode a
recommendation's outcomes of one type and source become one count per day (`agg:` ids, inside
and after the attribution window apart), so no row stands for one audience member.

Two blocking checks judge the written day: `no_personal_data`, and `expectations`, the Great
Expectations suite `normalized_feedback` run on a stable sample of at most
`guards.expectations.sample_rows` rows (feedback_id uniqueness exactly, on every row). Its
counts and failed expectations are in the check's metadata, the HTML Data Docs (every day's
result) at `<data>/data_docs/site/index.html`. A failure is an ERROR, or a WARN with
`guards.enabled = false`. The day's `quarantine` is written first, in the same step.

With `dagster.feedback_shards` = N > 1 the day is normalized by the N `feedback_shard_<k>`
steps (rows split by a hash of their recommendation id) and gathered here into this one table."""

QUARANTINE = """Every row refused that day, by any stage, with its reason, source file and row number.

Gathers the rejects of the ingestion assets (files that cannot be opened or have none of the
source's columns, lines that cannot be read, malformed values, missing fields, invalid values,
future timestamps, same-day duplicates) and of `normalized_feedback` (unknown recommendations,
events before serving). The `record` column keeps the refused row's values as JSON, personal
values (subject id, age, URL, comment) redacted, or nothing for an unreadable line or file; the
original stays in its landing file, which `landing_file` and `landing_row` point to. Written in
the same step as `normalized_feedback`, before its checks, so a blocked day has its quarantine."""


@dg.multi_asset(
    name="feedback_and_quarantine",
    partitions_def=daily_partitions,
    specs=[
        dg.AssetSpec(
            "normalized_feedback",
            description=NORMALIZED_FEEDBACK,
            group_name="feedback",
            kinds={"polars", "parquet"},
            code_version="2",  # 2: events before serving quarantined, clock skew clamped
            # the day itself; the earlier days of ingestion.recommendation_lookback_days are read
            # as data (defs/partitions.py); with dagster.feedback_shards > 1, the day's shards
            deps=SHARD_ASSETS or ["raw_recommendations", "raw_outcome_signals", "raw_labels"],
        ),
        dg.AssetSpec(
            "quarantine",
            description=QUARANTINE,
            group_name="feedback",
            kinds={"polars", "parquet"},
            code_version="2",  # 2: written with normalized_feedback
            deps=list(INGESTION_ASSETS),
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "no_personal_data",
            asset="normalized_feedback",
            blocking=True,
            description=(
                "Every column scanned: no raw subject id of the day, exact age, free text, e-mail or URL;"
                " subject keys are keyed pseudonyms. Blocks whatever guards.enabled says."
            ),
        ),
        dg.AssetCheckSpec(
            "expectations",
            asset="normalized_feedback",
            blocking=True,
            description=(
                "Great Expectations suite normalized_feedback on a stable sample of the day (non-null keys, "
                "known kinds and event types, value, confidence, propensity and rank ranges, event_at "
                "before the day's end and not before serving, partition_date) and feedback_id unique "
                "on every row; the result is published as HTML Data Docs under <data>/data_docs/."
            ),
        ),
    ],
)
def feedback_and_quarantine(
    context: dg.AssetExecutionContext, fbloop: FbloopResource
) -> Iterator[dg.MaterializeResult]:
    """Normalize the day's feedback (or gather its shards), write the day's quarantine, judge the feedback."""
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    rec_days = days_ending(day, config.ingestion.recommendation_lookback_days)
    if FEEDBACK_SHARDS == 1:
        plan = normalized_plan(context, fbloop, day, rec_days)
    else:
        try:
            plan = combined_plan(lake, day, FEEDBACK_SHARDS)
        except ShardMismatch as exc:
            raise dg.Failure(str(exc)) from exc
    sink_parquet(plan.feedback, lake.table_path("normalized_feedback", day))
    write_parquet(plan.rejects, lake.rejects_path("normalized_feedback", day))
    # the shards' files are a second copy of the day's feedback: kept only until it is written
    shutil.rmtree(ShardFiles.of(lake, day, 0, FEEDBACK_SHARDS).folder, ignore_errors=True)
    yield quarantine_result(lake, day)
    yield _normalized_result(lake, day, config, plan, rec_days)


def normalized_plan(
    context: dg.AssetExecutionContext, fbloop: FbloopResource, day: date, rec_days: list[date], shard: int = 0
) -> NormalizationPlan:
    """The normalization of ``day``, or of its shard ``shard`` of `dagster.feedback_shards`.

    Reads the recommendations of the lookback window, the day's signals and labels, and in
    aggregated mode the earlier days' signal ids, each cut to the shard (all of them with 1).
    """
    lake = fbloop.lake()
    config = fbloop.config()
    for upstream in ("raw_outcome_signals", "raw_labels"):
        if not lake.table_path(upstream, day).exists():
            raise dg.Failure(f"{upstream} is not materialized for {day}: materialize it first")
    aggregated = config.privacy.mode == "aggregated"
    wait_for_earlier_days(
        context,
        {"raw_recommendations": rec_days, **({"raw_outcome_signals": rec_days} if aggregated else {})},
    )

    def cut(frame: pl.LazyFrame) -> pl.LazyFrame:
        return in_shard(frame, shard, FEEDBACK_SHARDS)

    present = [p for d in rec_days if (p := lake.table_path("raw_recommendations", d)).exists()]
    if not present:
        context.log.warning(f"no raw_recommendations in the {len(rec_days)} days up to {day}: all unknown")
    recs = pl.scan_parquet(present) if present else empty_typed("recommendations").lazy()
    signals = pl.scan_parquet(lake.table_path("raw_outcome_signals", day))
    labels = pl.scan_parquet(lake.table_path("raw_labels", day))
    earlier = None
    if aggregated:  # a signal id does not survive the collapse: look back here
        paths = [f for d in rec_days[:-1] if (f := lake.table_path("raw_outcome_signals", d)).exists()]
        earlier = cut(pl.scan_parquet(paths)).select("signal_id") if paths else None
    key = fbloop.pseudonym_key()
    return normalize_plan(day, cut(recs), cut(signals), cut(labels), config, key, earlier)


def _normalized_result(
    lake: Lake, day: date, config: FbloopConfig, plan: NormalizationPlan, rec_days: list[date]
) -> dg.MaterializeResult:
    """The written day's metadata and its two checks."""
    path = lake.table_path("normalized_feedback", day)
    written = pl.scan_parquet(path)
    per_type = (
        written.group_by("event_type")
        .agg(pl.len().alias("rows"), (~pl.col("attribution_complete")).sum().alias("incomplete"))
        .sort("event_type")
        .collect()
    )
    stats = plan.stats(int(per_type["rows"].sum()), int(per_type["incomplete"].sum()))
    privacy_check = no_personal_data(lake, day, config.privacy.mode)
    validation = validate_feedback(
        written, day, data_docs_dir(lake.root), sample_rows=config.guards.expectations.sample_rows
    )
    by_type = dict(zip(per_type["event_type"], per_type["rows"], strict=True))
    read = {d.isoformat(): lake.table_path("raw_recommendations", d).exists() for d in rec_days}
    return dg.MaterializeResult(
        asset_key="normalized_feedback",
        metadata={
            "dagster/row_count": stats["normalized"],
            "dagster/column_schema": column_schema(written.collect_schema()),
            **stats,
            "by_event_type": counts_table(by_type, key="event_type"),
            "privacy_mode": config.privacy.mode,
            "clock_skew_tolerance_minutes": config.ingestion.clock_skew_tolerance_minutes,
            "recommendation_days_read": dg.MetadataValue.json([d for d, ok in read.items() if ok]),
            "recommendation_days_missing": dg.MetadataValue.json([d for d, ok in read.items() if not ok]),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(written)),
        check_results=[
            privacy_check,
            expectations_result(validation, guards_enabled=config.guards.enabled, partition=day.isoformat()),
        ],
    )


def no_personal_data(lake: Lake, day: date, mode: str) -> dg.AssetCheckResult:
    """The `no_personal_data` check: every column of the written day scanned, always an ERROR.

    Privacy is not a guard that `guards.enabled = false` turns into a report: the check blocks
    in every configuration. The day's raw subject ids are the ones the scan looks for.
    """
    raw = lake.table_path("raw_outcome_signals", day)
    raw_ids = pl.scan_parquet(raw).select("subject_id").unique().collect()["subject_id"]
    findings = personal_data_findings(
        pl.read_parquet(lake.table_path("normalized_feedback", day)), mode, raw_ids
    )
    return dg.AssetCheckResult(
        check_name="no_personal_data",
        asset_key="normalized_feedback",
        passed=not findings,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(findings) if findings else None,
        metadata={
            "partition": day.isoformat(),
            "value": dg.MetadataValue.float(float(len(findings))),  # findings; none allowed
            "threshold": dg.MetadataValue.float(0.0),
            "privacy_mode": mode,
            "findings": dg.MetadataValue.json(findings),
        },
    )


def expectations_result(
    validation: FeedbackValidation, guards_enabled: bool, partition: str = ""
) -> dg.AssetCheckResult:
    """The `expectations` check: ERROR when the suite fails (WARN with guards off), counts and Data Docs."""
    failed: list[list[object]] = [
        [f.expectation, f.column, f.unexpected_count, f.reason] for f in validation.failures
    ]
    return dg.AssetCheckResult(
        check_name="expectations",
        asset_key="normalized_feedback",
        passed=validation.success,
        severity=dg.AssetCheckSeverity.ERROR if guards_enabled else dg.AssetCheckSeverity.WARN,
        description=None if validation.success else "; ".join(f.reason for f in validation.failures),
        metadata={
            "partition": partition,
            "value": dg.MetadataValue.float(float(validation.unsuccessful)),  # failed expectations
            "threshold": dg.MetadataValue.float(0.0),
            "evaluated": validation.evaluated,
            "successful": validation.successful,
            "failed": validation.unsuccessful,
            "rows_validated": validation.rows_validated,
            "rows_total": validation.rows_total,
            "duplicate_feedback_id_rows": validation.duplicate_id_rows,
            "failed_expectations": (
                md_table(["expectation", "column", "unexpected", "reason"], failed)
                if failed
                else dg.MetadataValue.md("none")
            ),
            "data_docs": dg.MetadataValue.path(str(validation.docs_index)),
            "data_docs_page": dg.MetadataValue.path(str(validation.docs_page)),
        },
    )


def quarantine_result(lake: Lake, day: date) -> dg.MaterializeResult:
    """Gather every stage's rejects of ``day`` into `warehouse/quarantine/<day>.parquet`."""
    stages = [*INGESTION_ASSETS, "normalized_feedback"]
    parts = [pl.read_parquet(p) for s in stages if (p := lake.rejects_path(s, day)).exists()]
    frame = pl.concat([empty_rejects(), *parts]).sort(
        "source", "landing_file", "landing_row", nulls_last=True
    )
    path = write_parquet(frame, lake.table_path("quarantine", day))
    by_reason = dict(sorted(frame.group_by("reason_code").len().iter_rows()))
    by_source = dict(sorted(frame.group_by("source").len().iter_rows()))
    return dg.MaterializeResult(
        asset_key="quarantine",
        metadata={
            "dagster/row_count": frame.height,
            "by_reason": counts_table(by_reason),
            "by_source": counts_table(by_source, key="source"),
            **{f"reason/{k}": v for k, v in by_reason.items()},
            "sample": preview(frame.select("source", "landing_file", "landing_row", "reason")),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(frame)),
    )
