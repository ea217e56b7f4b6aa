"""Assets that ingest one UTC day of each landing source (CSV, JSON Lines or Parquet files).

Each asset types and validates its rows (pandera), writes the valid rows to
``warehouse/<asset>/<day>.parquet`` and every refused row, with its reason, to
``rejects/<asset>/<day>.parquet``, from where the `quarantine` asset gathers them.
"""

from dataclasses import replace
from datetime import date
from typing import Any

import dagster as dg
import sqlalchemy as sa

from fbloop_assets.defs.metadata import column_schema, counts_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.agreement import label_agreement
from fbloop_assets.lib.common.lake import Lake, frame_fingerprint, write_parquet
from fbloop_assets.lib.common.privacy import aggregated_at_ingestion
from fbloop_assets.lib.common.suppression import suppressed, suppressed_rows
from fbloop_assets.lib.ingest.day import DayIngest, ingest_day
from fbloop_assets.lib.ingest.store_labels import add_store_labels
from fbloop_assets.lib.ingest.store_slates import add_logged_slates
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.lib.serving.slate_log import SlateLog

_DESCRIPTIONS = {
    "creators": (
        "creators",
        "Daily snapshot of the creator catalog (niche, followers, engagement rate, audience, cost per post) "
        "from `landing/creators/<day>/`, validated; refused rows go to quarantine.",
    ),
    "campaigns": (
        "campaigns",
        "Daily snapshot of the campaigns (objective, target filters, cadence, budget) from "
        "`landing/campaigns/<day>/`, validated; refused rows go to quarantine.",
    ),
    "raw_recommendations": (
        "recommendations",
        "Recommendations served that day (request, campaign, creator, rank, score, propensity, weights "
        "version), read from the serving-log files in `landing/recommendations/<day>/` and the slate log "
        "(`fbloop suggest`, `POST /api/v1/suggestions`) for that day, validated alike.",
    ),
    "raw_outcome_signals": (
        "outcome_signals",
        "Outcome signals (impressions, engagements, clicks, conversions) that arrived that day, from "
        "`landing/outcome_signals/<day>/`, validated. Still raw: subject ids and exact ages are present "
        "here and removed by `normalized_feedback`. Signals of subjects on the suppression list (erased, "
        "consent withdrawn) are dropped here and counted (`suppressed_subject_rows`). In `aggregated` "
        "privacy mode no subject-level value stays: subject ids become `<redacted>`, age, country and URL "
        "empty.",
    ),
    "raw_labels": (
        "labels",
        "Reviewer labels (useful / not useful, with confidence) that arrived that day: the files in "
        "`landing/labels/<day>/` and the labels the label store (`fbloop serve`, `fbloop labels import`) "
        "recorded that day, validated (in `aggregated` privacy mode without their free-text comments). "
        "Retractions (undo) the store recorded that day go to "
        "`warehouse/label_retractions/<day>.parquet`, which keeps a retracted label out of every later "
        "dataset. Metadata: inter-reviewer agreement (Krippendorff's alpha) on items labeled twice.",
    ),
}


def _with_label_store(
    lake: Lake, engine: sa.Engine, day: date, stage: str, landed: DayIngest
) -> tuple[DayIngest, dict[str, Any], str]:
    """Add the store's labels of ``day``, write its retractions, measure agreement.

    Returns the labels, metadata, and a data-version suffix that changes with the retractions.
    """
    store = LabelStore(engine, served=frozenset())
    labels, retractions = store.events_recorded_on(day)
    result = add_store_labels(landed, labels, store.rejects_recorded_on(day), day, stage)
    retractions_path = write_parquet(retractions, lake.table_path("label_retractions", day))
    agreement = label_agreement(result.valid)
    return (
        result,
        {
            "store_labels": labels.height,
            "store_retractions": retractions.height,
            "retractions_path": dg.MetadataValue.path(str(retractions_path)),
            "items_labeled_twice": agreement["items_multiply_labeled"],
            "krippendorff_alpha": dg.MetadataValue.float(agreement["krippendorff_alpha"])
            if agreement["krippendorff_alpha"] is not None
            else dg.MetadataValue.text("n/a (no item labeled twice with variation)"),
            "pairwise_agreement": dg.MetadataValue.float(agreement["pairwise_agreement"])
            if agreement["pairwise_agreement"] is not None
            else dg.MetadataValue.text("n/a"),
        },
        ("-" + frame_fingerprint(retractions)[:8] if retractions.height else ""),
    )


def _without_suppressed(engine: sa.Engine, landed: DayIngest, key: bytes) -> tuple[DayIngest, dict[str, Any]]:
    """Drop the signals of subjects erased or whose consent was withdrawn (`fbloop erase`, `consent`)."""
    drop = suppressed_rows(landed.valid["subject_id"], key, suppressed(engine))
    kept = replace(landed, valid=landed.valid.filter(~drop))
    return kept, {"suppressed_subject_rows": int(drop.sum())}


def _ingestion_asset(asset_name: str, source: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=asset_name,
        description=description,
        partitions_def=daily_partitions,
        group_name="ingestion",
        kinds={"polars", "parquet"},
        # 2: labels also come from the label store, recommendations from the slate log
        code_version="2" if source in ("labels", "recommendations") else "1",
    )
    def _ingest(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
        day = partition_day(context)
        lake = fbloop.lake()
        result = ingest_day(lake, source, day, stage=asset_name)
        extra: dict[str, Any] = {}
        version = ""
        if source == "labels":
            result, extra, version = _with_label_store(lake, fbloop.store(), day, asset_name, result)
        if source == "outcome_signals":
            result, suppressed_meta = _without_suppressed(fbloop.store(), result, fbloop.pseudonym_key())
            extra |= suppressed_meta
        if source in ("outcome_signals", "labels") and fbloop.config().privacy.mode == "aggregated":
            result = replace(result, valid=aggregated_at_ingestion(result.valid))
        if source == "recommendations":
            logged = SlateLog(fbloop.store()).on_day(day)
            result = add_logged_slates(result, logged, day, asset_name)
            extra["slate_log_rows"] = logged.height
        if not result.files:
            context.log.warning(f"no {source} files landed for {day} in {lake.landing_dir(source, day)}")
        path = write_parquet(result.valid, lake.table_path(asset_name, day))
        write_parquet(result.rejects, lake.rejects_path(asset_name, day))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.valid.height,
                "dagster/column_schema": column_schema(result.valid.schema),
                "rows_read": result.rows_read,
                "rejected": result.rejects.height,
                "rejected_by_reason": counts_table(result.reject_counts()),
                "files": dg.MetadataValue.json(result.files),
                "path": dg.MetadataValue.path(str(path)),
                **extra,
            },
            data_version=dg.DataVersion(frame_fingerprint(result.valid) + version),
        )

    return _ingest


ingestion_assets = [_ingestion_asset(name, source, doc) for name, (source, doc) in _DESCRIPTIONS.items()]
