"""Tuning stage: per-campaign results of complete days and the campaign tuning suggestions."""

import dagster as dg

from fbloop_assets.defs.tuning.assets import campaign_results_daily, campaign_tuning_suggestions

defs = dg.Definitions(assets=[campaign_results_daily, campaign_tuning_suggestions])
