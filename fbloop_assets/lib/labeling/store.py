"""The label store: reviewers and append-only label events in fbloop's database (FR-FB-003).

A label says that a reviewer judged one served recommendation ``useful`` or ``not_useful``, with a
confidence in [0, 1]. An undo never deletes: it appends a *retraction* event naming the label.
Every event keeps who, what, when it happened (``labeled_at``) and when the store recorded it
(``recorded_at``; its UTC day is the ``raw_labels`` partition that ingests it). A label for a
recommendation that was never served is refused with a clear message.

Reviewers have a role (``reviewer`` or ``admin``) and a password hashed with Argon2id
(argon2-cffi); the plain password is never stored. The tables are created by migration 0003; the
same code runs on SQLite and PostgreSQL. What this module does not do: sessions, CSRF and HTML
(`fbloop_assets.web`), imports (`label_import`), the review queue (`review_queue`).
"""

from __future__ import annotations

import math
import re
import threading
import uuid
import zlib
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.ingest.landing import LABEL_VALUES, UTC_DATETIME

ROLES = ("reviewer", "admin")
KINDS = ("label", "retraction")
REVIEWER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_COMMENT = 1000
MAX_ID = 200
MIN_PASSWORD = 10

reviewers = sa.Table(
    "reviewers",
    METADATA,
    sa.Column("reviewer_id", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)
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

_hasher = PasswordHasher()
# Verified against when the reviewer does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(uuid.uuid4().hex)


class LabelError(ValueError):
    """A label or reviewer request the store refuses; the message says why, in one line."""


class UnknownRecommendation(LabelError):
    pass


class AlreadyLabeled(LabelError):
    pass


class NotFound(LabelError):
    pass


@dataclass(frozen=True)
class Reviewer:
    reviewer_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


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


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LabelError(f"{name} is missing")
    if len(value) > MAX_ID:
        raise LabelError(f"{name} is longer than {MAX_ID} characters")
    return value.strip()


def _event(row: Any) -> LabelEvent:
    m = row._mapping
    return LabelEvent(**{f: m[f] for f in LabelEvent.__dataclass_fields__})


class LabelStore:
    """Reviewers and label events on one migrated engine (`lib.store.open_store`).

    ``served`` answers whether a recommendation id was ever served (`served.ServedRecommendations`);
    ``clock`` gives the recording time (tests and simulations place events on chosen days).
    """

    def __init__(
        self,
        engine: sa.Engine,
        served: Container[str],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.served = served
        self.clock = clock
        # SQLite has no row locks for "check, then insert": one writer at a time in this process
        # (PostgreSQL uses an advisory lock per reviewer instead, which also covers other processes).
        self._sqlite_lock = threading.Lock()

    # reviewers ---------------------------------------------------------------------------------

    def add_reviewer(self, name: str, role: str, password: str) -> Reviewer:
        if not REVIEWER_NAME.match(name or ""):
            raise LabelError("reviewer name must be 1-64 characters: letters, digits and . _ @ - (not first)")
        if role not in ROLES:
            raise LabelError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if len(password) < MIN_PASSWORD:
            raise LabelError(f"password must have at least {MIN_PASSWORD} characters")
        row = {
            "reviewer_id": name,
            "role": role,
            "password_hash": _hasher.hash(password),
            "created_at": iso(self.clock()),
            "active": True,
        }
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(reviewers.c.reviewer_id).where(reviewers.c.reviewer_id == name)
            ).first():
                raise LabelError(f"reviewer {name!r} already exists")
            conn.execute(reviewers.insert().values(**row))
        return Reviewer(name, role)

    def reviewer(self, name: str) -> Reviewer | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(reviewers.c.reviewer_id, reviewers.c.role).where(
                    reviewers.c.reviewer_id == name, reviewers.c.active.is_(True)
                )
            ).first()
        return Reviewer(row.reviewer_id, row.role) if row else None

    def authenticate(self, name: str, password: str) -> Reviewer | None:
        """The reviewer if the password matches (Argon2id), else None; same cost either way."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(reviewers).where(reviewers.c.reviewer_id == name, reviewers.c.active.is_(True))
            ).first()
        stored = row.password_hash if row else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return Reviewer(row.reviewer_id, row.role) if row else None

    def list_reviewers(self) -> list[Reviewer]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(reviewers).order_by(reviewers.c.reviewer_id)).all()
        return [Reviewer(r.reviewer_id, r.role) for r in rows]

    # label events ------------------------------------------------------------------------------

    def record_label(
        self,
        reviewer_id: str,
        recommendation_id: object,
        value: object,
        confidence: object,
        comment: object = None,
        origin: str = "web",
        label_id: str | None = None,
    ) -> LabelEvent:
        """Append a label by ``reviewer_id`` (who must come from an authenticated session).

        Refused: an unknown recommendation, a bad value or confidence, and a second active label
        by the same reviewer on the same recommendation (undo the first one instead). With a
        ``label_id`` that is already stored for the same reviewer, the stored event is returned
        (a retried request does not label twice).
        """
        rec = _check_id("recommendation_id", recommendation_id)
        label_value, conf, text = validate_label(value, confidence, comment)
        if rec not in self.served:
            raise UnknownRecommendation(f"recommendation_id {rec[:80]!r} is not a served recommendation")
        now = self.clock()
        event_id = label_id or f"lbl-{uuid.uuid4().hex}"
        row: dict[str, Any] = {
            "event_id": event_id,
            "kind": "label",
            "label_id": event_id,
            "reviewer_id": reviewer_id,
            "recommendation_id": rec,
            "label_value": label_value,
            "confidence": conf,
            "comment": text,
            "origin": origin,
            "labeled_at": iso(now),
            "recorded_at": iso(now),
            "recorded_day": now.astimezone(UTC).date().isoformat(),
        }
        with self._write(reviewer_id) as conn:
            existing = None  # a fresh random id cannot be stored yet; a given one may be
            if label_id is not None:
                query = sa.select(label_events).where(label_events.c.event_id == event_id)
                existing = conn.execute(query).first()
            if existing is not None:
                if existing.reviewer_id != reviewer_id or existing.kind != "label":
                    raise LabelError(f"label id {event_id[:80]!r} is taken")
                return _event(existing)
            if self._active_label(conn, reviewer_id, rec) is not None:
                raise AlreadyLabeled(f"you have already labeled {rec[:80]!r}; undo that label to change it")
            conn.execute(label_events.insert().values(**row))
        return LabelEvent(**{k: v for k, v in row.items() if k != "recorded_day"})

    @contextmanager
    def _write(self, reviewer_id: str) -> Iterator[sa.Connection]:
        """A write transaction that no other write of the same reviewer interleaves with."""
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            self._sqlite_lock.acquire()
        try:
            with self.engine.begin() as conn:
                if not sqlite:
                    key = zlib.crc32(reviewer_id.encode()) >> 1
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(7723003, key)))
                yield conn
        finally:
            if sqlite:
                self._sqlite_lock.release()

    def _active_label(self, conn: sa.Connection, reviewer_id: str, recommendation_id: str) -> str | None:
        retracted = sa.select(label_events.c.label_id).where(label_events.c.kind == "retraction")
        return conn.execute(
            sa.select(label_events.c.label_id).where(
                label_events.c.kind == "label",
                label_events.c.reviewer_id == reviewer_id,
                label_events.c.recommendation_id == recommendation_id,
                label_events.c.label_id.not_in(retracted),
            )
        ).scalar()

    def retract(self, label_id: object, reviewer: Reviewer, origin: str = "web") -> LabelEvent:
        """Append a retraction of ``label_id``: only its own reviewer (or an admin) may undo it."""
        target_id = _check_id("label_id", label_id)
        now = self.clock()
        with self._write(reviewer.reviewer_id) as conn:
            target = conn.execute(
                sa.select(label_events).where(
                    label_events.c.kind == "label", label_events.c.label_id == target_id
                )
            ).first()
            if target is None or (target.reviewer_id != reviewer.reviewer_id and not reviewer.is_admin):
                raise NotFound(f"no label {target_id[:80]!r} of yours to undo")
            done = conn.execute(
                sa.select(label_events).where(
                    label_events.c.kind == "retraction", label_events.c.label_id == target_id
                )
            ).first()
            if done is not None:
                return _event(done)
            row: dict[str, Any] = {
                "event_id": f"rtr-{uuid.uuid4().hex}",
                "kind": "retraction",
                "label_id": target_id,
                "reviewer_id": reviewer.reviewer_id,
                "recommendation_id": target.recommendation_id,
                "label_value": None,
                "confidence": None,
                "comment": None,
                "origin": origin,
                "labeled_at": iso(now),
                "recorded_at": iso(now),
                "recorded_day": now.astimezone(UTC).date().isoformat(),
            }
            conn.execute(label_events.insert().values(**row))
        return LabelEvent(**{k: v for k, v in row.items() if k != "recorded_day"})

    def history(self, reviewer_id: str | None, limit: int = 200) -> list[dict[str, Any]]:
        """A reviewer's labels (everyone's with None), newest first, each with its retraction time."""
        retraction = label_events.alias("r")
        query = (
            sa.select(label_events, retraction.c.recorded_at.label("retracted_at"))
            .select_from(
                label_events.outerjoin(
                    retraction,
                    sa.and_(
                        retraction.c.kind == "retraction", retraction.c.label_id == label_events.c.label_id
                    ),
                )
            )
            .where(label_events.c.kind == "label")
            .order_by(label_events.c.recorded_at.desc(), label_events.c.event_id.desc())
            .limit(limit)
        )
        if reviewer_id is not None:
            query = query.where(label_events.c.reviewer_id == reviewer_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def label(self, label_id: str) -> LabelEvent | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(label_events).where(
                    label_events.c.kind == "label", label_events.c.label_id == label_id
                )
            ).first()
        return _event(row) if row else None

    def count_events(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(label_events.c.kind, sa.func.count()).group_by(label_events.c.kind))
            return {k: int(n) for k, n in rows}

    def label_counts(self) -> pl.DataFrame:
        """Per recommendation: active labels and distinct reviewers with an active label."""
        retracted = sa.select(label_events.c.label_id).where(label_events.c.kind == "retraction")
        query = sa.select(label_events.c.recommendation_id, label_events.c.reviewer_id).where(
            label_events.c.kind == "label", label_events.c.label_id.not_in(retracted)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return pl.DataFrame(
            [tuple(r) for r in rows],
            schema={"recommendation_id": pl.String, "reviewer_id": pl.String},
            orient="row",
        )

    def insert_imported(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Append imported label events; ones whose label id is stored already are skipped.

        Returns (added, already stored). Each row holds the `label_events` columns except the
        recording time, which is now.
        """
        now = self.clock()
        added = skipped = 0
        with self._write("import") as conn:
            for row in rows:
                exists = conn.execute(
                    sa.select(label_events.c.event_id).where(
                        label_events.c.kind == row["kind"], label_events.c.label_id == row["label_id"]
                    )
                ).first()
                if exists is not None:
                    skipped += 1
                    continue
                conn.execute(
                    label_events.insert().values(
                        **row, recorded_at=iso(now), recorded_day=now.astimezone(UTC).date().isoformat()
                    )
                )
                added += 1
        return added, skipped

    def insert_rejects(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Keep an import's refused rows (with reasons); a row refused before is not added again."""
        now = self.clock()
        added = skipped = 0
        with self.engine.begin() as conn:
            for row in rows:
                if conn.execute(
                    sa.select(label_rejects.c.id).where(label_rejects.c.reject_key == row["reject_key"])
                ).first():
                    skipped += 1
                    continue
                conn.execute(
                    label_rejects.insert().values(
                        **row, recorded_at=iso(now), recorded_day=now.astimezone(UTC).date().isoformat()
                    )
                )
                added += 1
        return added, skipped

    # what the daily run reads --------------------------------------------------------------------

    def events_recorded_on(self, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The labels and the retractions the store recorded on ``day`` (UTC), oldest first."""
        query = (
            sa.select(label_events)
            .where(label_events.c.recorded_day == day.isoformat())
            .order_by(label_events.c.recorded_at, label_events.c.event_id)
        )
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        labels = [r for r in rows if r["kind"] == "label"]
        retractions = [r for r in rows if r["kind"] == "retraction"]
        label_frame = pl.DataFrame(
            {
                "label_id": [r["label_id"] for r in labels],
                "reviewer_id": [r["reviewer_id"] for r in labels],
                "recommendation_id": [r["recommendation_id"] for r in labels],
                "label_value": [r["label_value"] for r in labels],
                "confidence": [r["confidence"] for r in labels],
                "labeled_at": [r["labeled_at"] for r in labels],
                "comment": [r["comment"] for r in labels],
                "origin": [r["origin"] for r in labels],
            },
            schema={
                c: pl.Float64 if c == "confidence" else pl.String
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
            },
        )
        retraction_frame = pl.DataFrame(
            {
                "label_id": [r["label_id"] for r in retractions],
                "recommendation_id": [r["recommendation_id"] for r in retractions],
                "retracted_by": [r["reviewer_id"] for r in retractions],
                "retracted_at": [datetime.fromisoformat(r["labeled_at"]) for r in retractions],
            },
            schema=RETRACTION_SCHEMA,
        )
        return label_frame, retraction_frame

    def rejects_recorded_on(self, day: date) -> list[dict[str, Any]]:
        query = (
            sa.select(label_rejects)
            .where(label_rejects.c.recorded_day == day.isoformat())
            .order_by(label_rejects.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


RETRACTION_SCHEMA: dict[str, pl.DataType] = {
    "label_id": pl.String(),
    "recommendation_id": pl.String(),
    "retracted_by": pl.String(),
    "retracted_at": UTC_DATETIME,
}
