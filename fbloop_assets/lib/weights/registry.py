"""The weights registry: immutable weights versions and the aliases that point at them.

Stored in fbloop's database (`lib.store`: SQLite by default, PostgreSQL by URL), so it survives
restarts and is shared by every process that serves or learns.

- ``weights_versions``: one immutable WeightsVersion each. The version id is a content address,
  ``w-`` and the first 12 hex digits of the SHA-256 of the weights, the feature list, the parent
  version and the dataset version, so the same fit of the same data is the same version. ``w0``,
  the hand-set default in `features`, is built in.
- ``weights_evaluations``: every offline evaluation of a version (the loop day, production it was
  compared with, metrics, check outcomes, whether every blocking check passed).
- ``alias_moves``: the append-only history of the aliases ``staging``, ``canary`` and
  ``production``: who moved which alias from which version to which, when, why, with what
  evidence, and whether it was forced past a failed check. An alias points where its last move
  points; ``production`` is ``w0`` before its first move, the others point nowhere (None).

Each move has an *effective day*, the first serving day it governs: a move decided by the loop
for day D governs serving from D + 1 on (the loop runs after D has ended); a move made by hand
governs the day it is made. `in_force(alias, day)` is what served on a day, which is also what
the loop for that day starts from.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store, serialized
from fbloop_assets.lib.weights.records import (
    _MOVE_LOCK,
    ALIASES,
    INITIAL,
    AliasMove,
    Evaluation,
    LaterDecision,
    UnknownVersion,
    WeightsVersion,
    _check_alias,
    code_version,
    evaluations_table,
    moves_table,
    now_iso,
    versions_table,
)

__all__ = [
    "ALIASES",
    "INITIAL",
    "AliasMove",
    "Evaluation",
    "LaterDecision",
    "Registry",
    "UnknownVersion",
    "WeightsVersion",
    "code_version",
    "now_iso",
]


class Registry:
    """Weights versions, their evaluations and the alias history, in fbloop's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def of(cls, lake: Lake) -> Registry:
        return cls(open_data_store(lake.root))

    # versions

    def save(self, candidate: WeightsVersion) -> WeightsVersion:
        """Store ``candidate`` unless that version exists; return the stored one (first write wins)."""
        if candidate.version == INITIAL.version:
            return INITIAL
        row = candidate.as_dict()
        with serialized(self.engine, _MOVE_LOCK) as connection:
            exists = connection.execute(
                sa.select(versions_table.c.version).where(versions_table.c.version == candidate.version)
            ).first()
            if exists is None:
                connection.execute(versions_table.insert().values(row))
        return self.load(candidate.version)

    def load(self, version: str) -> WeightsVersion:
        if version == INITIAL.version:
            return INITIAL
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(versions_table).where(versions_table.c.version == version)
            ).first()
        if row is None:
            raise UnknownVersion(f"unknown weights version {version!r}")
        raw = row._asdict()
        return WeightsVersion(**(raw | {"features": tuple(raw["features"])}))

    def versions(self) -> list[WeightsVersion]:
        """Every stored version, oldest first (``w0`` first)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(versions_table).order_by(versions_table.c.created_at, versions_table.c.version)
            ).all()
        return [INITIAL, *(WeightsVersion(**(r._asdict() | {"features": tuple(r.features)})) for r in rows)]

    def versions_of_dataset(self, dataset_version: str) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(versions_table.c.version).where(versions_table.c.dataset_version == dataset_version)
            ).all()
        return sorted(r.version for r in rows)

    # evaluations

    def record_evaluation(self, evaluation: Evaluation) -> None:
        with self.engine.begin() as connection:
            connection.execute(evaluations_table.insert().values(asdict(evaluation)))

    def evaluations(self, version: str) -> list[Evaluation]:
        """The loop's evaluations of ``version``, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(evaluations_table)
                .where(evaluations_table.c.version == version)
                .order_by(evaluations_table.c.id)
            ).all()
        return [Evaluation(**{k: v for k, v in r._asdict().items() if k != "id"}) for r in rows]

    def failed_checks(self, version: str) -> list[str]:
        """Blocking checks failed in the latest evaluation of ``version`` (none if never evaluated)."""
        evaluations = self.evaluations(version)
        return evaluations[-1].failed_checks() if evaluations else []

    # aliases

    def history(self, alias: str | None = None) -> list[AliasMove]:
        """Every move (of ``alias``, or of all aliases), in the order they were recorded."""
        query = sa.select(moves_table).order_by(moves_table.c.id)
        if alias is not None:
            _check_alias(alias)
            query = query.where(moves_table.c.alias == alias)
        with self.engine.connect() as connection:
            return [AliasMove(**r._asdict()) for r in connection.execute(query).all()]

    def moves_of(self, version: str) -> list[AliasMove]:
        """Every move to or from ``version``."""
        return [m for m in self.history() if version in (m.to_version, m.from_version)]

    @staticmethod
    def _pointing(moves: list[AliasMove], alias: str) -> str | None:
        mine = [m for m in moves if m.alias == alias]
        if mine:
            return mine[-1].to_version
        return INITIAL.version if alias == "production" else None

    def current(self, alias: str) -> str | None:
        """Where ``alias`` points now (production: ``w0`` before its first move)."""
        _check_alias(alias)
        return self._pointing(self.history(alias), alias)

    def in_force(self, alias: str, day: date) -> str | None:
        """Where ``alias`` pointed for serving on ``day``: the last move effective on or before it."""
        _check_alias(alias)
        moves = [m for m in self.history(alias) if m.effective_day <= day.isoformat()]
        return self._pointing(moves, alias)

    def production(self) -> WeightsVersion:
        """The production version now."""
        return self.load(self.current("production") or INITIAL.version)

    def production_before(self, day: date) -> WeightsVersion:
        """The production version that served on ``day``, which the loop for ``day`` starts from."""
        return self.load(self.in_force("production", day) or INITIAL.version)

    def move(
        self,
        alias: str,
        to_version: str | None,
        reason: str,
        *,
        actor: str,
        day: date | None = None,
        forced: bool = False,
        evidence: dict[str, Any] | None = None,
    ) -> AliasMove | None:
        """Point ``alias`` at ``to_version`` (None clears it), atomically; the recorded move.

        ``day`` is the loop day that decided it (None for a move made by hand). Returns None when
        the alias already points there. Refuses a loop move for a day earlier than one the loop
        already decided for this alias (a backfill must not undo later decisions).
        """
        (move,) = self.move_together(
            [(alias, to_version)], reason, actor=actor, day=day, forced=forced, evidence=evidence
        )
        return move

    def move_together(
        self,
        targets: list[tuple[str, str | None]],
        reason: str,
        *,
        actor: str,
        day: date | None = None,
        forced: bool = False,
        evidence: dict[str, Any] | None = None,
    ) -> list[AliasMove | None]:
        """Several `move`s in one transaction: all of them are recorded, or none."""
        for alias, to_version in targets:
            _check_alias(alias)
            if alias == "production" and to_version is None:
                raise ValueError("production cannot be cleared; roll back to a version instead")
            if to_version is not None:
                self.load(to_version)
        if not reason.strip():
            raise ValueError("a move needs a reason")
        now = datetime.now(UTC)
        effective = (day + timedelta(days=1)) if day is not None else now.date()
        done: list[AliasMove | None] = []
        with serialized(self.engine, _MOVE_LOCK) as connection:
            for alias, to_version in targets:
                rows = connection.execute(
                    sa.select(moves_table).where(moves_table.c.alias == alias).order_by(moves_table.c.id)
                ).all()
                moves = [AliasMove(**r._asdict()) for r in rows]
                current = self._pointing(moves, alias)
                if current == to_version:
                    done.append(None)
                    continue
                later = [m for m in moves if m.day is not None and m.effective_day > effective.isoformat()]
                if day is not None and later:
                    raise LaterDecision(
                        f"{alias} was already moved by the loop for {later[-1].day}; "
                        f"a decision for the earlier day {day} cannot move it"
                    )
                values: dict[str, Any] = {
                    "alias": alias,
                    "day": day.isoformat() if day is not None else None,
                    "effective_day": effective.isoformat(),
                    "at": now.isoformat(timespec="seconds"),
                    "actor": actor,
                    "from_version": current,
                    "to_version": to_version,
                    "reason": reason,
                    "forced": forced,
                    "evidence": evidence or {},
                }
                inserted = connection.execute(moves_table.insert().values(values)).inserted_primary_key
                assert inserted is not None
                done.append(AliasMove(id=int(inserted[0]), **values))
        return done
