"""`HeldBackRecord`: the guard outcomes `held_back_feedback` hands to the later stages of a day."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fbloop_assets.lib.common.records import StageRecord


@dataclass(frozen=True)
class HeldBackRecord(StageRecord):
    """The data guards' outcomes of the day (`GuardOutcome.as_dict` each); the rows are a table."""

    ASSET = "held_back_feedback"

    checks: list[dict[str, Any]] = field(default_factory=list)
