"""Feedback stage: normalized feedback with privacy applied, and the quarantine of refused rows."""

import dagster as dg

from fbloop_assets.defs.feedback.assets import normalized_feedback, quarantine

defs = dg.Definitions(assets=[normalized_feedback, quarantine])
