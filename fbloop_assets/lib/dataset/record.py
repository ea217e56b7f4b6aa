"""`DatasetRecord`: what `feedback_dataset` hands to the later stages for one loop day."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fbloop_assets.lib.common.records import StageRecord


@dataclass(frozen=True)
class DatasetRecord(StageRecord):
    """The day's FeedbackDataset version, its manifest (relative path) and its guard outcomes."""

    ASSET = "feedback_dataset"

    version: str
    manifest: str
    checks: list[dict[str, Any]] = field(default_factory=list)  # `GuardOutcome.as_dict` each
