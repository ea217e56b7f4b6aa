"""The loop's decisions: made once per loop day, recorded with the day, replayed on every re-run.

Two stages decide on a loop day: ``canary_review`` (promote, roll back or keep the canary) and
``production_weights`` (stage the day's candidate, start a canary; its record is the day's whole
decision, the canary review's moves included). Each decision is one row of ``loop_decisions`` in
fbloop's database (migration 0007), keyed by day and stage.

- A day that already has its decision replays it: no alias is moved, nothing is re-decided, and
  the record (aliases before and after, moves, the checks and their numbers) is what the day's
  materialization shows again. Re-running or backfilling a finished day never changes the
  registry.
- A day decided for the first time moves aliases only when no later day is decided yet: a
  decision for a day earlier than the newest decided day is recorded as ``kept`` with the reason,
  and moves nothing (the later days were decided from the registry as it stood).

A crash between the moves and the record leaves the moves without their record; the next run
of the day decides again from the registry as the moves left it, which repeats no move that
already points where it would go (`Registry.move` returns None for those).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import METADATA, open_data_store
from fbloop_assets.lib.weights.records import ALIASES, AliasMove, moves_table
from fbloop_assets.lib.weights.registry import Registry

STAGES = ("canary_review", "production_weights")
OUTCOMES = ("promoted", "rolled_back", "staged", "kept")

decisions_table = sa.Table(
    "loop_decisions",
    METADATA,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("stage", sa.String(40), primary_key=True),
    sa.Column("decided_at", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("candidate", sa.String(40)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("before", sa.JSON, nullable=False),
    sa.Column("after", sa.JSON, nullable=False),
    sa.Column("moves", sa.JSON, nullable=False),
    sa.Column("checks", sa.JSON, nullable=False),
    sa.Column("review", sa.JSON),
    sa.Column("notes", sa.JSON, nullable=False),
    sa.Column("history_upto", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class LoopDecision:
    """What one stage of the loop decided for one day (the typed hand-off to the CLI and demo)."""

    day: str
    stage: str  # one of STAGES
    decided_at: str  # UTC, when it was first decided
    outcome: str  # one of OUTCOMES
    candidate: str | None  # the day's candidate (production_weights), None for the canary review
    reason: str
    before: dict[str, str | None]  # alias -> version in force on the day
    after: dict[str, str | None]  # alias -> version right after the decision
    moves: list[dict[str, Any]]  # the alias moves it made (`AliasMove.as_dict`)
    checks: list[dict[str, Any]]  # the day's guard outcomes it read (asset added), with their numbers
    review: dict[str, Any] | None  # the canary comparison (`ArmComparison.as_dict`), if one ran
    notes: list[str]
    history_upto: int  # id of the newest alias move once it was recorded (0: none)

    @property
    def promoted(self) -> bool:
        return any(m["alias"] == "production" for m in self.moves)

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        """The checks that kept the candidate out, in the order the loop ran them."""
        return [c for c in self.checks if c.get("verdict") == "fail"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"promoted": self.promoted}


def outcome_of(moves: list[dict[str, Any]]) -> str:
    """promoted (production moved), staged (staging or canary took a version), rolled_back, kept."""
    if any(m["alias"] == "production" for m in moves):
        return "promoted"
    if any(m["to_version"] is not None for m in moves):
        return "staged"
    return "rolled_back" if moves else "kept"


def reason_of(moves: list[dict[str, Any]], notes: list[str], default: str) -> str:
    reasons = [f"{m['alias']} → {m['to_version'] or 'none'}: {m['reason']}" for m in moves]
    return "; ".join(reasons + notes) or default


@dataclass(frozen=True)
class Decided:
    """What a stage's decision function returns: its moves and notes (and the canary comparison)."""

    moves: list[AliasMove]
    notes: list[str]
    review: dict[str, Any] | None = None


class Decisions:
    """The ``loop_decisions`` table: one reader and one writer of `LoopDecision`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def of(cls, lake: Lake) -> Decisions:
        return cls(open_data_store(lake.root))

    def get(self, day: date, stage: str) -> LoopDecision | None:
        query = sa.select(decisions_table).where(
            decisions_table.c.day == day.isoformat(), decisions_table.c.stage == stage
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return LoopDecision(**row._asdict()) if row is not None else None

    def all(self) -> list[LoopDecision]:
        """Every decision, by day and stage."""
        query = sa.select(decisions_table).order_by(decisions_table.c.day, decisions_table.c.stage)
        with self.engine.connect() as connection:
            return [LoopDecision(**r._asdict()) for r in connection.execute(query).all()]

    def newest_day(self) -> date | None:
        with self.engine.connect() as connection:
            newest = connection.execute(sa.select(sa.func.max(decisions_table.c.day))).scalar()
        return date.fromisoformat(newest) if newest else None

    def record(self, decision: LoopDecision) -> LoopDecision:
        """Store ``decision`` unless its day and stage have one (first write wins); the stored one."""
        try:
            with self.engine.begin() as connection:
                connection.execute(decisions_table.insert().values(asdict(decision)))
        except sa.exc.IntegrityError:
            pass
        stored = self.get(date.fromisoformat(decision.day), decision.stage)
        assert stored is not None
        return stored


def _newest_move_id(registry: Registry) -> int:
    with registry.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.max(moves_table.c.id))).scalar() or 0)


def decide_once(
    decisions: Decisions,
    registry: Registry,
    day: date,
    stage: str,
    decide: Callable[[], Decided],
    *,
    candidate: str | None = None,
    checks: list[dict[str, Any]] | None = None,
    earlier: LoopDecision | None = None,
) -> tuple[LoopDecision, bool]:
    """The stage's decision for ``day`` and whether it was replayed (see the module docstring).

    ``earlier`` is the same day's decision of an earlier stage: its moves count as the day's.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    recorded = decisions.get(day, stage)
    if recorded is not None:
        return recorded, True
    before = {a: registry.in_force(a, day) for a in ALIASES}
    newest = decisions.newest_day()
    if newest is not None and newest > day:
        note = f"not decided: the loop already decided the later day {newest}, so this day moves no alias"
        decided = Decided(moves=[], notes=[note])
    else:
        decided = decide()
    moves = [m.as_dict() for m in decided.moves]
    day_moves = (earlier.moves if earlier else []) + moves
    default = "no canary to review" if stage == "canary_review" else "no alias moved"
    reviewed = earlier.reason if earlier is not None and (earlier.moves or earlier.review) else ""
    reason = "; ".join(r for r in (reviewed, reason_of(moves, decided.notes, "")) if r) or default
    decision = LoopDecision(
        day=day.isoformat(),
        stage=stage,
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        outcome=outcome_of(day_moves),
        candidate=candidate,
        reason=reason,
        before=before,
        after={a: registry.current(a) for a in ALIASES},
        moves=day_moves,
        checks=checks or [],
        review=decided.review if decided.review is not None else (earlier.review if earlier else None),
        notes=decided.notes,
        history_upto=_newest_move_id(registry),
    )
    return decisions.record(decision), False
