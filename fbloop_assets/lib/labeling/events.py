"""Label events: their tables, their record type, and what makes a label valid.

A label says that a reviewer judged one served recommendation ``useful`` or ``not_useful``, with a
confidence in [0, 1]. An undo never deletes: it appends a *retraction* event naming the label.
Every event keeps who, what, when it happened (``labeled_at``) and when the store recorded it
(``recorded_at``; its UTC day is the ``raw_labels`` partition that ingests it). The tables are
created by migration 0003. The store that writes and reads them is `store.LabelStore`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.ingest.landing import LABEL_VALUES, UTC_DATETIME

MAX_COMMENT = 1000
MAX_ID = 200

label_events = sa.Table(
    "label_events",
    METADATA,
    sa.Column("event_id", sa.String(120), primary_key=True),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("label_id", sa.String(120), nullable=False),
    sa.Column("reviewer_id", sa.String(120), nullable=False, index=True),
    sa.Column("recommendation_id", sa.String(200), nullable=False, index=True),
    sa.Column("label_value", sa.String(12)),
    sa.Column("confidence", sa.Float),
    sa.Column("comment", sa.Text),
    sa.Column("origin", sa.String(60), nullable=False),
    sa.Column("labeled_at", sa.String(40), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("recorded_day", sa.String(10), nullable=False, index=True),
    sa.UniqueConstraint("kind", "label_id", name="uq_label_events_kind_label"),
)
label_rejects = sa.Table(
    "label_rejects",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reject_key", sa.String(120), nullable=False, unique=True),
    sa.Column("file", sa.String(400), nullable=False),
    sa.Column("file_row", sa.Integer),
    sa.Column("reason_code", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record", sa.Text),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("recorded_day", sa.String(10), nullable=False, index=True),
)

# The frames the daily run reads (`LabelStore.events_recorded_on`).
LABEL_SCHEMA: dict[str, pl.DataType] = {
    c: pl.Float64() if c == "confidence" else pl.String()
    for c in (
        "label_id",
        "reviewer_id",
        "recommendation_id",
        "label_value",
        "confidence",
        "labeled_at",
        "comment",
        "origin",
    )
}
RETRACTION_SCHEMA: dict[str, pl.DataType] = {
    "label_id": pl.String(),
    "recommendation_id": pl.String(),
    "retracted_by": pl.String(),
    "retracted_at": UTC_DATETIME,
}


class LabelError(ValueError):
    """A label or reviewer request the store refuses; the message says why, in one line."""


class UnknownRecommendation(LabelError):
    pass


class AlreadyLabeled(LabelError):
    pass


class NotFound(LabelError):
    pass


@dataclass(frozen=True)
class LabelEvent:
    event_id: str
    kind: str
    label_id: str
    reviewer_id: str
    recommendation_id: str
    label_value: str | None
    confidence: float | None
    comment: str | None
    origin: str
    labeled_at: str
    recorded_at: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def as_row(self) -> dict[str, Any]:
        """The event as a `label_events` row: with its recording day (UTC, as `iso` writes it)."""
        return self.as_dict() | {"recorded_day": self.recorded_at[:10]}

    @classmethod
    def of_row(cls, row: sa.Row[Any]) -> LabelEvent:
        """The event a `label_events` row holds."""
        return cls(**{f: row._mapping[f] for f in cls.__dataclass_fields__})


def iso(moment: datetime) -> str:
    """A UTC timestamp as fixed-width RFC 3339 text, so that text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utc_now() -> datetime:
    return datetime.now(UTC)


def validate_label(value: object, confidence: object, comment: object) -> tuple[str, float, str | None]:
    """The label's value, confidence and comment, or a LabelError saying what is wrong."""
    if value not in LABEL_VALUES:
        raise LabelError(f"label must be one of {', '.join(LABEL_VALUES)}, got {str(value)[:40]!r}")
    try:
        conf = float(confidence)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LabelError(
            f"confidence must be a number between 0 and 1, got {str(confidence)[:40]!r}"
        ) from None
    if not math.isfinite(conf) or not 0.0 <= conf <= 1.0:
        raise LabelError(f"confidence must be between 0 and 1, got {conf}")
    if comment is not None and not isinstance(comment, str):
        raise LabelError("comment must be text")
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT:
        raise LabelError(f"comment is longer than {MAX_COMMENT} characters")
    return str(value), conf, text


def check_id(name: str, value: object) -> str:
    """``value`` stripped, or a LabelError when it is missing or longer than `MAX_ID`."""
    if not isinstance(value, str) or not value.strip():
        raise LabelError(f"{name} is missing")
    if len(value) > MAX_ID:
        raise LabelError(f"{name} is longer than {MAX_ID} characters")
    return value.strip()
