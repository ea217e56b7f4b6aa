"""`creator_outcomes` (a day's clicks and conversions per creator) and `creator_performance`."""

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import partition_day, preview
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import days_ending, frame_fingerprint, write_parquet
from fbloop_assets.lib.feedback import performance as perf


@dg.asset(
    partitions_def=daily_partitions,
    group_name="feedback",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=["normalized_feedback"],
)
def creator_outcomes_daily(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """Clicks and conversions per creator that arrived that day, inside their attribution windows.

    A small daily summary of `normalized_feedback`, so that `creator_performance` can add up four
    weeks without re-reading four weeks of feedback.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    source = lake.table_path("normalized_feedback", day)
    if not source.exists():
        raise dg.Failure(f"normalized_feedback is not materialized for {day}: materialize it first")
    frame = perf.creator_outcomes(pl.scan_parquet(source))
    path = write_parquet(frame, lake.table_path("creator_outcomes_daily", day))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "clicks": float(frame["clicks"].sum()),
            "conversions": float(frame["conversions"].sum()),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(frame)),
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="feedback",
    kinds={"polars", "parquet"},
    code_version="1",
    # the day itself; the earlier days of performance.window_days are read as data (defs/partitions.py)
    deps=[creator_outcomes_daily],
)
def creator_performance(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """Each creator's past conversion rate over the trailing window, as the scorer's feature.

    Sums `creator_outcomes_daily` over `performance.window_days` days up to this one and shrinks
    each creator's conversions per click towards the catalog's rate (`performance.prior_clicks`
    clicks of pseudo-evidence). Suggestions served the next day use it as `past_conversion_rate`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config().performance
    days = days_ending(day, config.window_days)
    wait_for_earlier_days(context, {"creator_outcomes_daily": days})
    paths = [p for d in days if (p := lake.table_path("creator_outcomes_daily", d)).exists()]
    outcomes = pl.scan_parquet(paths) if paths else pl.LazyFrame(schema=perf.OUTCOMES_SCHEMA)
    frame = perf.creator_performance(outcomes, config.prior_clicks)
    path = write_parquet(frame, lake.table_path("creator_performance", day))
    worst = frame.sort("past_conversion_rate").head(5)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "days_read": len(paths),
            "days_missing": dg.MetadataValue.json(
                [d.isoformat() for d in days if not lake.table_path("creator_outcomes_daily", d).exists()]
            ),
            "lowest_conversion_rates": preview(worst),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(frame)),
    )
