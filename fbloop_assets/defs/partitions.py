"""The one daily partitioning (UTC) that every stage of the loop shares."""

import dagster as dg

# The newest partition is yesterday: a day is processed once it has ended (late outcomes that
# arrive afterwards land in later days and are marked by their attribution windows).
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")


def window_dep(asset: str | dg.AssetsDefinition, start_offset: int, end_offset: int = 0) -> dg.AssetDep:
    """A dependency on a window of the upstream's daily partitions, relative to this partition."""
    return dg.AssetDep(
        asset,
        partition_mapping=dg.TimeWindowPartitionMapping(start_offset=start_offset, end_offset=end_offset),
    )
