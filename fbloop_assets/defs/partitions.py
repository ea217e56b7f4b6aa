"""The one daily partitioning (UTC) that every stage of the loop shares, and the shards of a day.

Every dependency between partitioned assets is on the same day. An asset that reads earlier days
(a lookback window: recommendations served up to 14 days before, 28 days of creator outcomes,
the trailing days of labels and counts, the serving days of a FeedbackDataset) reads them as
data from the warehouse, checks that they are there and lists them in its metadata or manifest.
A window partition mapping would say the same in the lineage graph, but Dagster follows it
downstream when it plans a backfill of assets: a 3-day backfill would also materialize every
later day whose window reaches back into those 3, and an asset depending on its own earlier days
would chain each day to the next up to the newest partition. With same-day edges a backfill of N
days is exactly N runs, one per day; the run queue starts them oldest first, never two of one day
at once (dagster.yaml). Where several days run at once (deploy/celery/), a step that reads an
earlier day waits until that day's run has written it (defs/ordering.py).
"""

import dagster as dg

from fbloop_assets.lib.common.config import load_config

# Read once, when the code location loads: a partitions definition is fixed for its lifetime.
# The newest partition is yesterday: a day is processed once it has ended (late outcomes that
# arrive afterwards land in later days and are marked by their attribution windows).
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_config().dagster.partitions_start, timezone="UTC"
)

# How many steps normalize one day (`dagster.feedback_shards`): shards of a day are steps of its run,
# not partitions, so a day stays one partition everywhere (defs/feedback/shards.py).
FEEDBACK_SHARDS = load_config().dagster.feedback_shards
SHARD_ASSETS = [f"feedback_shard_{i + 1}" for i in range(FEEDBACK_SHARDS)] if FEEDBACK_SHARDS > 1 else []
