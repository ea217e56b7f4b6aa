"""The weights stage's hand-offs: `CandidateRecord`, `EvaluationRecord`, and the day's guard outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.records import StageRecord
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.feedback.record import HeldBackRecord


@dataclass(frozen=True)
class CandidateRecord(StageRecord):
    """The day's candidate (None: none fitted, with the reason), its parent and dataset version."""

    ASSET = "candidate_weights"

    candidate: str | None
    parent: str
    dataset_version: str
    reason: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class EvaluationRecord(StageRecord):
    """Candidate versus production on the day's held-out requests, and the guards' outcomes."""

    ASSET = "weights_evaluation"

    candidate: str | None
    production: str
    dataset_version: str
    metrics: dict[str, dict[str, Any]]
    checks: list[dict[str, Any]] = field(default_factory=list)


GUARDED: tuple[type[HeldBackRecord | DatasetRecord | CandidateRecord | EvaluationRecord], ...] = (
    HeldBackRecord,
    DatasetRecord,
    CandidateRecord,
    EvaluationRecord,
)


def day_checks(lake: Lake, day: date) -> list[dict[str, Any]]:
    """Every guard outcome of the loop day, in the order the loop ran them (asset added)."""
    checks: list[dict[str, Any]] = []
    for kind in GUARDED:
        record = kind.read_if_present(lake, day)
        if record is not None:
            checks += [c | {"asset": kind.ASSET} for c in record.checks]
    return checks
