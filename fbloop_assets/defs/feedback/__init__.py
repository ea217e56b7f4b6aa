"""Feedback stage: normalized feedback with privacy applied, the quarantine, creator performance, and
the data guards that hold suspicious feedback back."""

import dagster as dg

from fbloop_assets.defs.feedback.assets import feedback_and_quarantine
from fbloop_assets.defs.feedback.held_back import held_back_feedback, outcome_counts_daily
from fbloop_assets.defs.feedback.performance import creator_outcomes_daily, creator_performance
from fbloop_assets.defs.feedback.shards import feedback_shards

defs = dg.Definitions(
    assets=[
        feedback_and_quarantine,
        creator_outcomes_daily,
        creator_performance,
        outcome_counts_daily,
        held_back_feedback,
        *feedback_shards,
    ]
)
