"""Tuning suggestions and the campaign owners' decisions, in fbloop's own database (`lib.store`).

`tuning_suggestions` keeps every suggestion the daily asset made (content-addressed id, so a
re-run stores nothing twice); `tuning_decisions` is append-only: an owner may change their mind,
and the newest decision on a suggestion is the one in force.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from fbloop_assets.lib.common.store import METADATA, current_actor

DECISIONS = ("accepted", "rejected")

suggestions_table = sa.Table(
    "tuning_suggestions",
    METADATA,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("campaign_id", sa.String(120), nullable=False, index=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("parameter", sa.String(60), nullable=False),
    sa.Column("kpi", sa.String(40), nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("expected", sa.Float, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)
decisions_table = sa.Table(
    "tuning_decisions",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "suggestion_id", sa.String(40), sa.ForeignKey("tuning_suggestions.id"), nullable=False, index=True
    ),
    sa.Column("decision", sa.String(10), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)


class UnknownSuggestion(LookupError):
    """No suggestion with that id was ever made."""


def save_suggestions(engine: sa.Engine, suggestions: list[dict[str, Any]]) -> int:
    """Store suggestions not stored yet; returns how many were new."""
    if not suggestions:
        return 0
    with engine.begin() as conn:
        known = set(
            conn.scalars(
                sa.select(suggestions_table.c.id).where(
                    suggestions_table.c.id.in_([s["id"] for s in suggestions])
                )
            )
        )
        new = [s for s in suggestions if s["id"] not in known]
        for s in new:
            conn.execute(
                suggestions_table.insert().values(
                    id=s["id"],
                    campaign_id=s["campaign_id"],
                    day=s["day"],
                    parameter=s["parameter"],
                    kpi=s["kpi"],
                    baseline=s["baseline"],
                    expected=s["expected"],
                    payload=s,
                )
            )
    return len(new)


def get_suggestion(engine: sa.Engine, suggestion_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        payload = conn.scalar(
            sa.select(suggestions_table.c.payload).where(suggestions_table.c.id == suggestion_id)
        )
    if payload is None:
        raise UnknownSuggestion(f"unknown suggestion {suggestion_id!r} (see `fbloop tune --campaign ID`)")
    return dict(payload)


def decide(
    engine: sa.Engine,
    suggestion_id: str,
    decision: str,
    reason: str,
    actor: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Record an owner's decision on a suggestion; returns it with the suggestion."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not reason.strip():
        raise ValueError("a decision needs a reason (--reason TEXT)")
    suggestion = get_suggestion(engine, suggestion_id)
    row = {
        "suggestion_id": suggestion_id,
        "decision": decision,
        "reason": reason.strip(),
        "actor": actor or current_actor(),
        "at": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    with engine.begin() as conn:
        conn.execute(decisions_table.insert().values(**row))
    return row | {"suggestion": suggestion}


def decisions(engine: sa.Engine, campaign_id: str | None = None) -> list[dict[str, Any]]:
    """The decision in force on each decided suggestion (newest first), with the suggestion."""
    query = (
        sa.select(decisions_table, suggestions_table.c.payload)
        .join(suggestions_table, suggestions_table.c.id == decisions_table.c.suggestion_id)
        .order_by(decisions_table.c.at.desc(), decisions_table.c.id.desc())
    )
    if campaign_id is not None:
        query = query.where(suggestions_table.c.campaign_id == campaign_id)
    latest: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            if row["suggestion_id"] not in latest:
                latest[row["suggestion_id"]] = {
                    "suggestion_id": row["suggestion_id"],
                    "decision": row["decision"],
                    "reason": row["reason"],
                    "actor": row["actor"],
                    "at": row["at"],
                    "suggestion": dict(row["payload"]),
                }
    return list(latest.values())
