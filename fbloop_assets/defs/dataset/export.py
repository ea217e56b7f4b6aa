"""`feedback_export`: the anonymized training pairs of a window of days, as a CSV or Parquet file."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import check_result, column_schema, partition_day
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.store import current_actor
from fbloop_assets.lib.dataset.export import EXPORT_SCHEMA
from fbloop_assets.lib.dataset.export_audit import ExportRequest, checked_export

# The days read follow `days_back` and are listed in the metadata (days_read, days_missing).
_DEFAULT_DAYS_BACK = 7


class FeedbackExportConfig(dg.Config):
    days_back: int = _DEFAULT_DAYS_BACK
    min_feedback_fields: int = 1
    format: str = "csv"


@dg.asset(
    partitions_def=daily_partitions,
    group_name="dataset",
    kinds={"polars", "csv", "parquet"},
    code_version="1",
    deps=[
        # the day itself; the earlier days of `days_back` are read as data (defs/partitions.py)
        "normalized_feedback",
        "held_back_feedback",
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "privacy",
            asset="feedback_export",
            blocking=True,
            description="The written file holds no raw subject id or exact age; blocks even with guards off.",
        )
    ],
)
def feedback_export(
    context: dg.AssetExecutionContext, config: FeedbackExportConfig, fbloop: FbloopResource
) -> dg.MaterializeResult:
    """Anonymized training pairs for ML engineers: one row per served recommendation.

    Reads `normalized_feedback` for the `days_back` days ending at this partition (missing days
    are listed, not an error), counts each feedback row once by its `feedback_id`, and writes
    one row per recommendation: the recommendation as served, its outcomes summed inside their
    attribution windows, its labels (count, share useful, mean confidence) and whether all its
    attribution windows had closed by the end of this day (`outcomes_complete`). Subject keys,
    age buckets, countries and reviewer ids never leave (the blocking check `privacy` reads the
    written file back to make sure). Retracted labels and rows a guard held back are left out
    (`withheld`). Pairs with fewer than
    `min_feedback_fields` feedback fields are skipped; rows that cannot be exported are counted
    as errors with sample reasons.

    File: `<data>/exports/feedback_training_YYYYMMDD_HHMMSS.{csv,parquet}` (UTC time of the
    run), written atomically, permissions 0640 in a 0750 folder (group `export.group` when set).
    Each materialization writes a new file and a row of fbloop's export audit (`fbloop exports
    list`), the same code path as `fbloop export`. The privacy check blocks whatever
    `guards.enabled` says, and a refused file is deleted.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    settings = fbloop.config()
    request = ExportRequest(
        day, config.days_back, config.min_feedback_fields, config.format, lake.root / "exports"
    )
    done = checked_export(
        lake,
        request,
        mode=settings.privacy.mode,
        group=settings.export.group,
        engine=fbloop.store(),
        actor=current_actor(),
        via=f"asset feedback_export, run {context.run.run_id}",
        now=datetime.now(UTC),
    )
    stats, outcome = done.stats, done.outcome
    if stats.days_missing:
        context.log.warning(f"normalized_feedback missing for {', '.join(stats.days_missing)}")
    if stats.errors:
        context.log.warning(f"{stats.errors:,} feedback rows could not be exported: {stats.error_reasons}")
    values = stats.as_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.exported,
            "dagster/column_schema": column_schema(pl.Schema(EXPORT_SCHEMA)),
            **{k: v for k, v in values.items() if isinstance(v, int | float)},
            "file": values["file"],
            "path": dg.MetadataValue.path(values["file"]),
            **{
                k: dg.MetadataValue.json(values[k])
                for k in ("days_read", "days_missing", "error_reasons", "error_samples")
            },
            "format": config.format,
            "days_back": config.days_back,
            "min_feedback_fields": config.min_feedback_fields,
            "sha256": done.sha256 or "(refused: file deleted)",
            "export_record": done.record_id,
        },
        check_results=[check_result(outcome, settings.guards.enabled, context.partition_key)],
    )
