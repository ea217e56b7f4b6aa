"""Assets that ingest one UTC day of each landing source (CSV, JSON Lines or Parquet files).

Each asset types and validates its rows (pandera), writes the valid rows to
``warehouse/<asset>/<day>.parquet`` and every refused row, with its reason, to
``rejects/<asset>/<day>.parquet``, from where the `quarantine` asset gathers them.
"""

import dagster as dg

from fbloop_assets.defs.metadata import column_schema, counts_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.ingest import ingest_day
from fbloop_assets.lib.lake import frame_fingerprint, write_parquet

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
        "version), read from the serving log in `landing/recommendations/<day>/`, validated.",
    ),
    "raw_outcome_signals": (
        "outcome_signals",
        "Outcome signals (impressions, engagements, clicks, conversions) that arrived that day, from "
        "`landing/outcome_signals/<day>/`, validated. Still raw: subject ids and exact ages are present "
        "here and removed by `normalized_feedback`.",
    ),
    "raw_labels": (
        "labels",
        "Reviewer labels (useful / not useful, with confidence) that arrived that day, from "
        "`landing/labels/<day>/`, validated.",
    ),
}


def _ingestion_asset(asset_name: str, source: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=asset_name,
        description=description,
        partitions_def=daily_partitions,
        group_name="ingestion",
        kinds={"polars", "parquet"},
        code_version="1",
    )
    def _ingest(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
        day = partition_day(context)
        lake = fbloop.lake()
        result = ingest_day(lake, source, day, stage=asset_name)
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
            },
            data_version=dg.DataVersion(frame_fingerprint(result.valid)),
        )

    return _ingest


ingestion_assets = [_ingestion_asset(name, source, doc) for name, (source, doc) in _DESCRIPTIONS.items()]
