"""The one daily partitioning (UTC) that every stage of the loop shares."""

import dagster as dg

# The newest partition is yesterday: a day is processed once it has ended (late outcomes that
# arrive afterwards land in later days and are marked by their attribution windows).
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
