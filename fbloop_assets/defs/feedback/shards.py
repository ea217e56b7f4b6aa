"""`feedback_shard_<k>`: with `dagster.feedback_shards` = N > 1, a day is normalized in N steps.

Each shard asset normalizes the rows of one hash bucket of recommendation ids (recommendations,
signals and labels alike, `lib.feedback.shards`), so the N steps run on any N workers at once;
`feedback_and_quarantine` then gathers them into the day's one `normalized_feedback` table and
runs its checks on the whole day. With N = 1 there are no shard assets.
"""

import dagster as dg
import polars as pl

from fbloop_assets.defs.feedback.assets import normalized_plan
from fbloop_assets.defs.metadata import partition_day
from fbloop_assets.defs.partitions import FEEDBACK_SHARDS, SHARD_ASSETS, daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import days_ending, frame_fingerprint, sink_parquet
from fbloop_assets.lib.feedback.shards import ShardFiles, write_summary

DESCRIPTION = """Shard {k} of {n} of the day's normalization: the feedback of the recommendations whose id
hashes to bucket {k}, normalized as `normalized_feedback` describes (privacy, de-duplication,
attribution windows; unknown recommendations and events before serving refused).

Written to `staging/normalized_feedback/<day>/` (feedback, rejects and a summary of its counts);
`feedback_and_quarantine` gathers the {n} shards into the day's `normalized_feedback`, checks the
whole day and removes the staging files (so `staging_path` below names a file that is gone once
the day is gathered). Set by `dagster.feedback_shards`."""


def shard_asset(index: int) -> dg.AssetsDefinition:
    """The asset that normalizes shard ``index`` (0-based) of every day."""

    @dg.asset(
        name=SHARD_ASSETS[index],
        partitions_def=daily_partitions,
        group_name="feedback",
        kinds={"polars", "parquet"},
        code_version="1",
        deps=["raw_recommendations", "raw_outcome_signals", "raw_labels"],
        description=DESCRIPTION.format(k=index + 1, n=FEEDBACK_SHARDS),
    )
    def _shard(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
        day = partition_day(context)
        lake = fbloop.lake()
        rec_days = days_ending(day, fbloop.config().ingestion.recommendation_lookback_days)
        plan = normalized_plan(context, fbloop, day, rec_days, shard=index)
        files = ShardFiles.of(lake, day, index, FEEDBACK_SHARDS)
        written = sink_parquet(plan.feedback, files.feedback)
        summary = write_summary(files, plan)
        rows = pl.scan_parquet(written).select(pl.len()).collect().item()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "refused": plan.rejects.height,
                **{f"counts/{k}": v for k, v in summary["counts"].items()},
                # a staging file: removed once feedback_and_quarantine has gathered the day
                "staging_path": dg.MetadataValue.path(str(written)),
            },
            data_version=dg.DataVersion(frame_fingerprint(pl.scan_parquet(written))),
        )

    return _shard


feedback_shards = [shard_asset(i) for i in range(len(SHARD_ASSETS))]
