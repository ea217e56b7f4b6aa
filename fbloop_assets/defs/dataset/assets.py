"""`feedback_dataset`: a versioned FeedbackDataset per loop day, from complete days only, with the
guards that judge it (evidence, completeness, drift, privacy)."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import check_result, md_table, partition_day
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.outcome import GuardOutcome, enforce
from fbloop_assets.lib.dataset.build import (
    FeedbackDataset,
    build_dataset,
    closing_days,
    input_partitions,
    load_dataset,
)
from fbloop_assets.lib.dataset.guards import completeness, drift, evidence, privacy
from fbloop_assets.lib.dataset.record import DatasetRecord

# Too little evidence is a normal day, not an alarm: no candidate, production stays, recorded.
DECIDING = ("evidence",)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="dataset",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=[
        # same-day edges for the lineage graph; the window of earlier days read is data
        # (defs/partitions.py), listed in the manifest
        "normalized_feedback",
        "raw_recommendations",
        "campaigns",
        "creators",
        "creator_performance",
        "held_back_feedback",
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "evidence",
            asset="feedback_dataset",
            description="Enough records and held-out labeled records, overall and per campaign segment "
            "(a fail is a warning: no candidate is fitted that day, production stays).",
        ),
        dg.AssetCheckSpec(
            "completeness",
            asset="feedback_dataset",
            blocking=True,
            description="Only serving days whose attribution windows have closed; no partition missing "
            "from the window; few outcomes arriving after their window.",
        ),
        dg.AssetCheckSpec(
            "drift",
            asset="feedback_dataset",
            blocking=True,
            description="Per-feature population stability index against the previous version, beyond "
            "the noise of the two sample sizes.",
        ),
        dg.AssetCheckSpec(
            "privacy",
            asset="feedback_dataset",
            blocking=True,
            description="No raw subject id or exact age in the dataset.",
        ),
    ],
)
def feedback_dataset(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The FeedbackDataset version this loop day learns from: one example per served recommendation.

    Covers the `dataset.window_days` serving days whose attribution windows have all closed by
    the end of this day (the longest window, 7 days by default, before it). Each example holds
    the recommendation as served, its features as served, its outcomes inside their attribution
    windows (de-duplicated by feedback id across days) and its labels; a stable hash of the
    request id puts `dataset.holdout_share` of requests aside for offline evaluation.

    Rows a guard held back (`held_back_feedback`) and retracted labels count nowhere.

    The version (`ds-…`) is a hash of the input files and derivation parameters: the same inputs
    give the same version. Files: `datasets/<version>/examples.parquet` and `manifest.json`.

    Its checks: `evidence` (`guards.evidence.*`; too little evidence is a normal day: it warns,
    no candidate is fitted and `production_weights` records why production stayed), and the
    blocking `completeness` (no partition missing from the window, only closed attribution
    windows, `guards.completeness.*`), `drift` against the previous day's version
    (`guards.drift.*`) and `privacy`: their failure stops the day's run before a candidate is
    fitted.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    # the window's inputs, and the previous day's version that `drift` compares with
    wait_for_earlier_days(
        context, {**input_partitions(day, config), "feedback_dataset": [day - timedelta(days=1)]}
    )
    dataset = build_dataset(lake, day, config)
    manifest = dataset.manifest
    manifest_path = dataset.examples_path.parent / "manifest.json"
    outcomes = [enforce(o, config.guards.enabled) for o in dataset_guards(lake, day, dataset, config)]
    checks = [o.as_dict() for o in outcomes]
    DatasetRecord(version=dataset.version, manifest=lake.relative(manifest_path), checks=checks).write(
        lake, day
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
            "partitions_before_start": dg.MetadataValue.json(manifest.get("partitions_before_start", {})),
            "rows_held_back": manifest.get("rows_held_back", 0),
            "outcomes_late": manifest.get("outcomes_late", 0),
            "derivation_parameters": dg.MetadataValue.json(manifest["derivation_parameters"]),
            "created_at": manifest["created_at"],
            "manifest": dg.MetadataValue.path(str(manifest_path)),
        },
        data_version=dg.DataVersion(manifest["version"]),
        check_results=[
            check_result(o, config.guards.enabled, context.partition_key, decides=o.name in DECIDING)
            for o in outcomes
        ],
    )


def _segments(lake: Lake, days: list[str]) -> dict[str, str]:
    """campaign id -> objective, from the campaign snapshots of the serving days."""
    paths = [p for d in days if (p := lake.table_path("campaigns", date.fromisoformat(d))).exists()]
    if not paths:
        return {}
    frame = (
        pl.scan_parquet(paths).select("campaign_id", "objective").unique("campaign_id", keep="last").collect()
    )
    return dict(frame.iter_rows())


def _previous(lake: Lake, day: date) -> FeedbackDataset | None:
    record = DatasetRecord.read_if_present(lake, day - timedelta(days=1))
    if record is None:
        return None
    try:
        return load_dataset(lake, record.version)
    except FileNotFoundError:
        return None


def dataset_guards(
    lake: Lake, day: date, dataset: FeedbackDataset, config: FbloopConfig
) -> list[GuardOutcome]:
    """Evidence, completeness, drift against the previous day's version, privacy."""
    examples = dataset.examples()
    guards = config.guards
    previous = _previous(lake, day)
    return [
        evidence(
            examples,
            _segments(lake, dataset.manifest["serving_days"]),
            guards.evidence,
            config.objective.uses_labels,
        ),
        completeness(day, dataset.manifest, closing_days(config), guards.completeness),
        drift(examples, previous.examples() if previous else None, guards.drift),
        privacy(examples, config.privacy.mode, f"dataset {dataset.version}"),
    ]
