"""Erased and withdrawn subjects: an append-only record in fbloop's database, by pseudonym only.

Each row of ``subject_erasures`` is one subject's erasure (``fbloop erase``) or consent
withdrawal (``fbloop consent withdraw``): who, when, why, the subject's keyed pseudonym (never
the raw id) and what was touched, as JSON. Triggers refuse UPDATE and DELETE. The pseudonyms of
all rows are the suppression list: ingestion drops every signal of such a subject from then on,
so a re-run of any day, or a late delivery, cannot bring the subject back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.common.privacy import pseudonymize
from fbloop_assets.lib.common.store import METADATA

KINDS = ("erasure", "withdrawal")

subject_erasures = sa.Table(
    "subject_erasures",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("pseudonym", sa.String(64), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("reason", sa.String(2000), nullable=False),
    sa.Column("touched", sa.JSON, nullable=False),
)


def append(
    engine: sa.Engine,
    kind: str,
    pseudonym: str,
    actor: str,
    reason: str,
    touched: dict[str, Any],
    now: datetime,
) -> int:
    """Append one record; its id. ``reason`` must say why (it is the record's point)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not reason.strip():
        raise ValueError("--reason must say why (it is recorded)")
    values = {
        "kind": kind,
        "pseudonym": pseudonym,
        "actor": actor,
        "recorded_at": now.astimezone(UTC).isoformat(),
        "reason": reason.strip()[:2000],
        "touched": touched,
    }
    with engine.begin() as connection:
        inserted = connection.execute(
            subject_erasures.insert().values(**values).returning(subject_erasures.c.id)
        )
        return int(inserted.scalar_one())


def records(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every erasure and withdrawal, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(subject_erasures).order_by(subject_erasures.c.id))
        out = [dict(r._mapping) for r in rows]
    for row in out:
        if not isinstance(row["touched"], dict):
            row["touched"] = json.loads(row["touched"])
    return out


def suppressed(engine: sa.Engine) -> frozenset[str]:
    """The pseudonyms ingestion drops: every subject erased or whose consent was withdrawn."""
    with engine.connect() as connection:
        return frozenset(connection.execute(sa.select(subject_erasures.c.pseudonym).distinct()).scalars())


def suppressed_rows(subject_ids: pl.Series, key: bytes, pseudonyms: frozenset[str]) -> pl.Series:
    """Which rows belong to a suppressed subject (False for rows without a subject)."""
    if not pseudonyms:
        return pl.Series(subject_ids.name, [False] * subject_ids.len(), pl.Boolean)
    keys = pseudonymize(subject_ids.cast(pl.String), key)
    return keys.is_in(pl.Series(list(pseudonyms), dtype=pl.String).implode()).fill_null(False)
