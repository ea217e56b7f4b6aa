"""The daily job that runs the whole loop for one partition, and its 02:00 UTC schedule."""

import dagster as dg

daily_feedback_loop = dg.define_asset_job(
    "daily_feedback_loop",
    # The training export is pulled on demand (`fbloop export`, or the asset in the UI); at 10M
    # signals a day a daily 7-day export would add a pass over 70M rows to every run.
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("feedback_export"),
    description=(
        "The whole loop for one UTC day: ingest, validate, quarantine, normalize, build the feedback "
        "dataset, fit and evaluate candidate weights, promote them when the checks pass."
    ),
)

reference_data = dg.define_asset_job(
    "reference_data",
    selection=dg.AssetSelection.assets("creators", "campaigns"),
    description="The day's creator and campaign snapshots alone, for serving before the day's loop has run.",
)

# A tick at 02:00 UTC on day D runs partition D-1, once its last signals have landed.
daily_feedback_loop_schedule = dg.build_schedule_from_partitioned_job(
    daily_feedback_loop,
    hour_of_day=2,
    name="daily_feedback_loop_schedule",
    description=(
        "Runs daily_feedback_loop at 02:00 UTC for the day before, once its signals have landed. "
        "Stopped until turned on: the toggle on this page (or `dagster schedule start "
        "daily_feedback_loop_schedule`), with the Dagster daemon running (`dagster dev` runs it)."
    ),
)

# The executor of every job (the UI's asset materializations and backfills included) is
# `executors.fbloop_executor`, set in `definitions`: one process by default (`dagster.executor`).
defs = dg.Definitions(
    jobs=[daily_feedback_loop, reference_data],
    schedules=[daily_feedback_loop_schedule],
)
