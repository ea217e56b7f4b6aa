"""`TuningRecord`: what `campaign_tuning_suggestions` hands to `fbloop tune` for one loop day."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fbloop_assets.lib.common.records import StageRecord


@dataclass(frozen=True)
class TuningRecord(StageRecord):
    """Every active campaign's suggestions (`policy.tune_day`), the decisions in force, the tracking."""

    ASSET = "campaign_tuning_suggestions"

    day: str
    serving_days: list[str]
    days_missing: list[str]
    campaigns: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    tracking: list[dict[str, Any]]
