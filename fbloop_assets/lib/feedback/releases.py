"""Releases of held-back feedback, in fbloop's own database (`lib.store`): append-only.

A guard holds rows back (`held_back_feedback`); an analyst who finds them sound (a post that
really went viral, a reviewer who really was that busy) releases them: the day, the guard and,
optionally, whose rows (a reviewer, creator or campaign id). `held_back_feedback` of that day,
materialized again, no longer holds them back, and the datasets built after it use them. The
release and its reason stay on record; nothing is deleted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.common.store import METADATA, current_actor

GUARDS = ("label_quality", "outcome_anomalies")
SUBJECT_COLUMNS = ("reviewer_id", "creator_id", "campaign_id")

releases_table = sa.Table(
    "held_back_releases",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.String(10), nullable=False, index=True),
    sa.Column("guard", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(120), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)


def release(
    engine: sa.Engine,
    day: date,
    guard: str,
    subject: str | None,
    reason: str,
    actor: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Record a release of ``guard``'s held-back rows of ``day`` (of ``subject`` only, if given)."""
    if guard not in GUARDS:
        raise ValueError(f"guard must be one of {', '.join(GUARDS)}, got {guard!r}")
    if not reason.strip():
        raise ValueError("a release needs a reason (--reason TEXT)")
    row = {
        "day": day.isoformat(),
        "guard": guard,
        "subject": subject or None,
        "reason": reason.strip(),
        "actor": actor or current_actor(),
        "at": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    with engine.begin() as conn:
        row["id"] = conn.execute(releases_table.insert().values(**row)).inserted_primary_key[0]  # type: ignore[index]
    return row


def releases_of(engine: sa.Engine, day: date) -> list[dict[str, Any]]:
    """Every release recorded for ``day``, oldest first."""
    query = (
        sa.select(releases_table).where(releases_table.c.day == day.isoformat()).order_by(releases_table.c.id)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def apply_releases(held: pl.DataFrame, releases: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split held-back rows into (still held, released) by the releases of their day."""
    if not releases or held.is_empty():
        return held, held.clear()
    released = pl.lit(False)
    for r in releases:
        match = pl.col("guard") == r["guard"]
        if r["subject"]:
            match = match & pl.any_horizontal(pl.col(c) == r["subject"] for c in SUBJECT_COLUMNS).fill_null(
                False
            )
        released = released | match
    flagged = held.with_columns(released.alias("_released"))
    return (
        flagged.filter(~pl.col("_released")).drop("_released"),
        flagged.filter(pl.col("_released")).drop("_released"),
    )
