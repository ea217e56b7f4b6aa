"""`normalized_feedback` (one feedback schema, privacy applied) and `quarantine` (every refused row)."""

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import column_schema, counts_table, md_table, partition_day, preview
from fbloop_assets.defs.partitions import daily_partitions, window_dep
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import days_ending, frame_fingerprint, sink_parquet, write_parquet
from fbloop_assets.lib.common.privacy import personal_data_findings
from fbloop_assets.lib.feedback.expectations import FeedbackValidation, data_docs_dir, validate_feedback
from fbloop_assets.lib.feedback.normalize import normalize_plan
from fbloop_assets.lib.ingest.day import empty_rejects, empty_typed

# The partition mapping shows the default lookback in the lineage graph; the files actually read
# follow ingestion.recommendation_lookback_days and are listed in the metadata.
DEFAULT_LOOKBACK_DAYS = 14
INGESTION_ASSETS = ("creators", "campaigns", "raw_recommendations", "raw_outcome_signals", "raw_labels")


@dg.asset(
    partitions_def=daily_partitions,
    group_name="feedback",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=[
        window_dep("raw_recommendations", -(DEFAULT_LOOKBACK_DAYS - 1)),
        "raw_outcome_signals",
        "raw_labels",
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "no_personal_data",
            asset="normalized_feedback",
            blocking=True,
            description="No raw subject id, exact age, free text or URL; subject keys are keyed pseudonyms.",
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
def normalized_feedback(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """One UTC day of feedback in fbloop's single feedback schema (outcomes, conversions and labels).

    Joins the day's outcome signals and reviewer labels to the recommendations they belong to
    (served within the lookback window), applies privacy (keyed pseudonyms for subject ids, age
    buckets, no free text or URLs; subject-level signals without consent are excluded and counted),
    removes duplicates by a stable key and marks outcomes whose attribution window is still open
    as incomplete (`attribution_complete = false`). Signals and labels that refer to an unknown
    recommendation go to quarantine.

    Two blocking checks judge the written day: `no_personal_data`, and `expectations`, the Great
    Expectations suite `normalized_feedback` run on a stable sample of at most
    `guards.expectations.sample_rows` rows (feedback_id uniqueness exactly, on every row). Its
    counts and failed expectations are in the check's metadata, the HTML Data Docs (every day's
    result) at `<data>/data_docs/site/index.html`. A failure is an ERROR, or a WARN with
    `guards.enabled = false`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    for upstream in ("raw_outcome_signals", "raw_labels"):
        if not lake.table_path(upstream, day).exists():
            raise dg.Failure(f"{upstream} is not materialized for {day}: materialize it first")
    lookback = config.ingestion.recommendation_lookback_days
    rec_days = days_ending(day, lookback)
    rec_paths = [lake.table_path("raw_recommendations", d) for d in rec_days]
    present = [p for p in rec_paths if p.exists()]
    if not present:
        context.log.warning(
            f"no raw_recommendations in the {lookback} days up to {day}: every signal is unknown"
        )
    recs = pl.scan_parquet(present) if present else empty_typed("recommendations").lazy()
    signals = pl.scan_parquet(lake.table_path("raw_outcome_signals", day))
    labels = pl.scan_parquet(lake.table_path("raw_labels", day))
    plan = normalize_plan(day, recs, signals, labels, config, fbloop.pseudonym_key())
    path = sink_parquet(plan.feedback, lake.table_path("normalized_feedback", day))
    write_parquet(plan.rejects, lake.rejects_path("normalized_feedback", day))
    written = pl.scan_parquet(path)
    per_type = (
        written.group_by("event_type")
        .agg(pl.len().alias("rows"), (~pl.col("attribution_complete")).sum().alias("incomplete"))
        .sort("event_type")
        .collect()
    )
    stats = plan.stats(int(per_type["rows"].sum()), int(per_type["incomplete"].sum()))
    findings = personal_data_findings(
        written.select("subject_key", "age_bucket").collect(), config.privacy.mode
    )
    privacy_check = dg.AssetCheckResult(
        check_name="no_personal_data",
        passed=not findings,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"privacy_mode": config.privacy.mode, "findings": dg.MetadataValue.json(findings)},
    )
    validation = validate_feedback(
        written, day, data_docs_dir(lake.root), sample_rows=config.guards.expectations.sample_rows
    )
    expectations_check = expectations_result(validation, guards_enabled=config.guards.enabled)
    by_type = dict(zip(per_type["event_type"], per_type["rows"], strict=True))
    used_days = [d.isoformat() for d, p in zip(rec_days, rec_paths, strict=True) if p.exists()]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats["normalized"],
            "dagster/column_schema": column_schema(written.collect_schema()),
            **stats,
            "by_event_type": counts_table(by_type, key="event_type"),
            "privacy_mode": config.privacy.mode,
            "recommendation_days_read": dg.MetadataValue.json(used_days),
            "recommendation_days_missing": dg.MetadataValue.json(
                [d.isoformat() for d, p in zip(rec_days, rec_paths, strict=True) if not p.exists()]
            ),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(written)),
        check_results=[privacy_check, expectations_check],
    )


def expectations_result(validation: FeedbackValidation, guards_enabled: bool) -> dg.AssetCheckResult:
    """The `expectations` check: ERROR when the suite fails (WARN with guards off), counts and Data Docs."""
    failed: list[list[object]] = [
        [f.expectation, f.column, f.unexpected_count, f.reason] for f in validation.failures
    ]
    return dg.AssetCheckResult(
        check_name="expectations",
        passed=validation.success,
        severity=dg.AssetCheckSeverity.ERROR if guards_enabled else dg.AssetCheckSeverity.WARN,
        description=None if validation.success else "; ".join(f.reason for f in validation.failures),
        metadata={
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


@dg.asset(
    partitions_def=daily_partitions,
    group_name="feedback",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=[*INGESTION_ASSETS, normalized_feedback],
)
def quarantine(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """Every row refused that day, by any stage, with its reason, source file and row number.

    Gathers the rejects of the ingestion assets (malformed values, missing fields, invalid values,
    future timestamps, same-day duplicates, files that cannot be parsed at all) and of
    `normalized_feedback` (unknown recommendation ids). The `record` column keeps the refused
    row's values as JSON, personal values (subject id, age, URL, comment) redacted; the original
    row stays in its landing file, which `landing_file` and `landing_row` point to.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    stages = [*INGESTION_ASSETS, "normalized_feedback"]
    parts = [pl.read_parquet(p) for s in stages if (p := lake.rejects_path(s, day)).exists()]
    frame = pl.concat([empty_rejects(), *parts]).sort(
        "source", "landing_file", "landing_row", nulls_last=True
    )
    path = write_parquet(frame, lake.table_path("quarantine", day))
    by_reason = dict(sorted(frame.group_by("reason_code").len().iter_rows()))
    by_source = dict(sorted(frame.group_by("source").len().iter_rows()))
    return dg.MaterializeResult(
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
