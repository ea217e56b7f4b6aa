"""`feedback_dataset`: a versioned FeedbackDataset per loop day, from complete days only."""

import dagster as dg

from fbloop_assets.defs.metadata import md_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions, window_dep
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.dataset import build_dataset
from fbloop_assets.lib.lake import write_json

# The lineage graph shows the default window (7 serving days closing 7 days before the loop
# day); the partitions actually read follow the configuration and are listed in the manifest.
_DEFAULT_SPAN = 7 + 7


@dg.asset(
    partitions_def=daily_partitions,
    group_name="dataset",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=[
        window_dep("normalized_feedback", -(_DEFAULT_SPAN - 1)),
        window_dep("raw_recommendations", -(_DEFAULT_SPAN - 1), -7),
        window_dep("campaigns", -(_DEFAULT_SPAN - 1), -7),
        window_dep("creators", -(_DEFAULT_SPAN - 1), -7),
        window_dep("creator_performance", -_DEFAULT_SPAN, -8),
    ],
)
def feedback_dataset(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The FeedbackDataset version this loop day learns from: one example per served recommendation.

    Covers the `dataset.window_days` serving days whose attribution windows have all closed by
    the end of this day (the longest window, 7 days by default, before it). Each example holds
    the recommendation as served, its features as served, its outcomes inside their attribution
    windows (de-duplicated by feedback id across days) and its labels; a stable hash of the
    request id puts `dataset.holdout_share` of requests aside for offline evaluation.

    The version (`ds-…`) is a hash of the input files and derivation parameters: the same inputs
    give the same version. Files: `datasets/<version>/examples.parquet` and `manifest.json`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    dataset = build_dataset(lake, day, fbloop.config())
    manifest = dataset.manifest
    manifest_path = dataset.examples_path.parent / "manifest.json"
    write_json(
        {"version": dataset.version, "manifest": lake.relative(manifest_path)},
        lake.record_path("feedback_dataset", day),
    )
    if manifest["record_count"] == 0:
        context.log.warning(f"no complete serving days with feedback for {day}: the dataset is empty")
    missing = manifest["partitions_missing"]
    return dg.MaterializeResult(
        metadata={
            "dataset_version": manifest["version"],
            "dagster/row_count": manifest["record_count"],
            "labeled_records": manifest["labeled_count"],
            "holdout_records": manifest["holdout_count"],
            "records_without_features": manifest["without_features"],
            "serving_days": dg.MetadataValue.json(manifest["serving_days"]),
            "records_by_serving_day": md_table(
                ["serving day", "records"], [[d, n] for d, n in manifest["records_by_serving_day"].items()]
            ),
            "partitions_read": dg.MetadataValue.json(manifest["partitions_read"]),
            "partitions_missing": dg.MetadataValue.json(missing),
            "derivation_parameters": dg.MetadataValue.json(manifest["derivation_parameters"]),
            "created_at": manifest["created_at"],
            "manifest": dg.MetadataValue.path(str(manifest_path)),
        },
        data_version=dg.DataVersion(manifest["version"]),
    )
