"""Feedback stage: normalized feedback with privacy applied, the quarantine, creator performance."""

import dagster as dg

from fbloop_assets.defs.feedback.assets import normalized_feedback, quarantine
from fbloop_assets.defs.feedback.performance import creator_outcomes_daily, creator_performance

defs = dg.Definitions(assets=[normalized_feedback, quarantine, creator_outcomes_daily, creator_performance])
