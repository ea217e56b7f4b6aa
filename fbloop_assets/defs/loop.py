"""The daily job that runs the whole loop for one partition, and its 02:00 UTC schedule."""

import dagster as dg

daily_feedback_loop = dg.define_asset_job(
    "daily_feedback_loop",
    selection=dg.AssetSelection.all(),
    description="Ingest, validate, quarantine and normalize one UTC day of feedback.",
)

# A tick at 02:00 UTC on day D runs partition D-1, once its last signals have landed.
daily_feedback_loop_schedule = dg.build_schedule_from_partitioned_job(
    daily_feedback_loop, hour_of_day=2, name="daily_feedback_loop_schedule"
)

defs = dg.Definitions(jobs=[daily_feedback_loop], schedules=[daily_feedback_loop_schedule])
