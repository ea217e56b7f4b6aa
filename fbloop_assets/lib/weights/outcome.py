"""`LoopOutcome`: what the loop made of one day, assembled from the stages' typed records.

`fbloop run` and the demo read a day's dataset, candidate, evaluation and decisions through this,
never through the assets' metadata keys: each part comes from its stage's one reader
(`DatasetRecord`, `CandidateRecord`, `EvaluationRecord`, `Decisions`). Only the records of the
assets the run materialized are read, so a day stopped by a guard does not show an earlier run's
candidate as its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.weights.decisions import Decisions, LoopDecision
from fbloop_assets.lib.weights.handoffs import CandidateRecord, EvaluationRecord


@dataclass(frozen=True)
class DatasetSummary:
    """The day's FeedbackDataset version and its sizes (from its manifest)."""

    version: str
    records: int
    labeled: int


@dataclass(frozen=True)
class LoopOutcome:
    """The day's dataset, candidate, evaluation (arm -> metric -> value) and recorded decisions."""

    dataset: DatasetSummary | None = None
    candidate: str | None = None
    candidate_reason: str = ""
    evaluation: dict[str, dict[str, Any]] = field(default_factory=dict)
    production: dict[str, Any] | None = None  # `LoopDecision.as_dict` of production_weights
    canary_review: dict[str, Any] | None = None  # `LoopDecision.as_dict` of canary_review

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dataset(lake: Lake, day: date) -> DatasetSummary:
    record = DatasetRecord.read(lake, day)
    manifest = json.loads((lake.root / record.manifest).read_text())
    return DatasetSummary(record.version, int(manifest["record_count"]), int(manifest["labeled_count"]))


def _decision(decisions: Decisions, day: date, stage: str, ran: set[str]) -> dict[str, Any] | None:
    decision: LoopDecision | None = decisions.get(day, stage) if stage in ran else None
    return decision.as_dict() if decision else None


def loop_outcome(lake: Lake, day: date, ran: set[str], decisions: Decisions) -> LoopOutcome:
    """The day's `LoopOutcome` from the records of the assets in ``ran`` (asset names)."""
    candidate = CandidateRecord.read(lake, day) if CandidateRecord.ASSET in ran else None
    evaluation = EvaluationRecord.read(lake, day) if EvaluationRecord.ASSET in ran else None
    return LoopOutcome(
        dataset=_dataset(lake, day) if DatasetRecord.ASSET in ran else None,
        candidate=candidate.candidate if candidate else None,
        candidate_reason=candidate.reason if candidate else "",
        evaluation=evaluation.metrics if evaluation else {},
        production=_decision(decisions, day, "production_weights", ran),
        canary_review=_decision(decisions, day, "canary_review", ran),
    )
