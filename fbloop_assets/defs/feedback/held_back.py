"""The data guards: `outcome_counts_daily` and `held_back_feedback` with its blocking checks."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import check_result, md_table, partition_day, preview
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import Lake, days_ending, frame_fingerprint, write_parquet
from fbloop_assets.lib.common.outcome import enforce, held_back_warns
from fbloop_assets.lib.dataset.build import drop_held_back
from fbloop_assets.lib.feedback.guards import (
    COUNTS_SCHEMA,
    empty_held_back,
    label_quality,
    outcome_anomalies,
    outcome_counts,
)
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA
from fbloop_assets.lib.feedback.record import HeldBackRecord
from fbloop_assets.lib.feedback.releases import apply_releases, releases_of


@dg.asset(
    partitions_def=daily_partitions,
    group_name="feedback",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=["normalized_feedback"],
)
def outcome_counts_daily(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """Impressions, engagements, clicks and conversions per creator and campaign that arrived that day.

    A small daily summary of `normalized_feedback`: the trailing baseline against which
    `held_back_feedback` judges a day's engagement without re-reading weeks of feedback.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    source = lake.table_path("normalized_feedback", day)
    if not source.exists():
        raise dg.Failure(f"normalized_feedback is not materialized for {day}: materialize it first")
    frame = outcome_counts(pl.scan_parquet(source))
    path = write_parquet(frame, lake.table_path("outcome_counts_daily", day))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            **{c: float(frame[c].sum()) for c in ("impressions", "engagements", "clicks", "conversions")},
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(frame)),
    )


def _labels(lake: Lake, days: list[date]) -> pl.DataFrame:
    """The labels among the `normalized_feedback` rows of ``days`` that no guard held back."""
    columns = ["feedback_id", "kind", "value", "reviewer_id", "recommendation_id", "partition_date"]
    paths = [p for d in days if (p := lake.table_path("normalized_feedback", d)).exists()]
    if not paths:
        return pl.DataFrame(schema={c: FEEDBACK_SCHEMA[c] for c in columns})
    labels = pl.scan_parquet(paths).select(columns).filter(pl.col("kind") == "label")
    return drop_held_back(labels, lake.scan_tables("held_back_feedback", days)).collect()


@dg.asset(
    partitions_def=daily_partitions,
    group_name="feedback",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=[
        # same-day edges; the trailing days (guards.label_quality.trailing_days,
        # guards.anomalies.trailing_days) and what this asset held back on them are read as data
        # (defs/partitions.py). No dependency on its own earlier days: that would chain every
        # backfill into one day after another up to the newest partition.
        "normalized_feedback",
        outcome_counts_daily,
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "label_quality",
            asset="held_back_feedback",
            blocking=True,
            description="Reviewers agree (Krippendorff's alpha) and no reviewer floods the day; "
            "a flood is held back with a warning and the day goes on without it.",
        ),
        dg.AssetCheckSpec(
            "outcome_anomalies",
            asset="held_back_feedback",
            blocking=True,
            description="No creator or campaign shows engagement far above its trailing days without "
            "the conversions to match (bought engagement is held back with a warning; the day goes on).",
        ),
    ],
)
def held_back_feedback(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The day's feedback rows that the data guards hold back, each with the guard and the reason.

    `label_quality` holds back the labels of a reviewer who floods the day (an outsized, sudden
    share of its labels, or agreement with peers far below the others') and grades the
    reviewers' agreement; `outcome_anomalies` holds back the engagement and click rows of a
    creator (or campaign) whose engagement rate jumps far above its trailing days without the
    conversions to match: bought engagement. Rows held back are a warning: the day goes on
    without them. Only a fail that held nothing back (reviewers who disagree as a whole) stops
    the run.

    Held-back rows stay in `normalized_feedback` untouched; this table flags them and every
    FeedbackDataset leaves them out. An analyst who finds them sound releases them
    (`fbloop held-back release`), which materializes this day again without them: the datasets
    built afterwards use them. Labels held back on the trailing days stay out of the agreement
    measured here. With `guards.enabled = false` nothing is held back and the checks only
    report. Thresholds: `guards.label_quality.*`, `guards.anomalies.*`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    guards = config.guards
    source = lake.table_path("normalized_feedback", day)
    if not source.exists():
        raise dg.Failure(f"normalized_feedback is not materialized for {day}: materialize it first")
    yesterday = day - timedelta(days=1)
    label_days = days_ending(yesterday, guards.label_quality.trailing_days)
    count_days = days_ending(yesterday, guards.anomalies.trailing_days)
    wait_for_earlier_days(
        context,
        {
            "normalized_feedback": label_days,
            "held_back_feedback": label_days,
            "outcome_counts_daily": count_days,
        },
    )
    feedback = pl.scan_parquet(source)
    # only the day's labels are read whole; outcome rows only for the entities held back
    today = feedback.filter(pl.col("kind") == "label").collect()
    labels = label_quality(today, _labels(lake, label_days), len(label_days), guards.label_quality)
    count_paths = [p for d in count_days if (p := lake.table_path("outcome_counts_daily", d)).exists()]
    trailing = pl.read_parquet(count_paths) if count_paths else pl.DataFrame(schema=COUNTS_SCHEMA)
    day_counts = lake.table_path("outcome_counts_daily", day)
    if not day_counts.exists():
        raise dg.Failure(f"outcome_counts_daily is not materialized for {day}: materialize it first")
    anomalies = outcome_anomalies(pl.read_parquet(day_counts), trailing, feedback, guards.anomalies)
    results = [labels, anomalies]
    flagged = pl.concat([empty_held_back(), *(r.held_back for r in results if guards.enabled)])
    releases = releases_of(fbloop.store(), day) if flagged.height else []
    held, released = apply_releases(flagged, releases)
    path = write_parquet(held, lake.table_path("held_back_feedback", day))
    outcomes = [held_back_warns(enforce(r.outcome, guards.enabled)) for r in results]
    HeldBackRecord(checks=[o.as_dict() for o in outcomes]).write(lake, day)
    by_reason = held.group_by("guard", "reason").len().sort("len", descending=True)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": held.height,
            "guards_enabled": guards.enabled,
            "released_rows": released.height,
            "releases": md_table(
                ["guard", "subject", "by", "at", "reason"],
                [[r["guard"], r["subject"] or "all", r["actor"], r["at"], r["reason"]] for r in releases],
            ),
            "by_reason": md_table(["guard", "reason", "rows"], [list(r) for r in by_reason.iter_rows()]),
            "sample": preview(held.select("guard", "reason", "event_type", "feedback_id")),
            "label_days_read": len(label_days),
            "count_days_read": len(count_paths),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(held)),
        check_results=[check_result(o, guards.enabled, context.partition_key) for o in outcomes],
    )
