"""The one daily partitioning (UTC) that every stage of the loop shares."""

import dagster as dg

# end_offset=1 lets today's partition run (a live day is marked incomplete, not refused).
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)
