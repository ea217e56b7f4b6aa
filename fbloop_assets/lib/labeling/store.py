"""The label store: append-only label events in fbloop's database (FR-FB-003).

`LabelStore` appends labels and retractions (`events`), refuses a label for a recommendation that
was never served with a clear message, keeps an import's refused rows, and answers what the web
app, the imports and the daily run read: a reviewer's history, the active labels per
recommendation, the events recorded on a day. The same code runs on SQLite and PostgreSQL. What
this module does not do: reviewers and sessions (`accounts`), sign-in throttling (`throttle`),
HTML and CSRF (`fbloop_assets.web`), imports (`imports`), the review queue (`queue`).
"""

from __future__ import annotations

import threading
import uuid
import zlib
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.labeling.accounts import Reviewer
from fbloop_assets.lib.labeling.events import (
    LABEL_SCHEMA,
    RETRACTION_SCHEMA,
    AlreadyLabeled,
    LabelError,
    LabelEvent,
    NotFound,
    UnknownRecommendation,
    check_id,
    iso,
    label_events,
    label_rejects,
    utc_now,
    validate_label,
)


class LabelStore:
    """Label events on one migrated engine (`lib.common.store.open_store`).

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
        rec = check_id("recommendation_id", recommendation_id)
        label_value, conf, text = validate_label(value, confidence, comment)
        if rec not in self.served:
            raise UnknownRecommendation(f"recommendation_id {rec[:80]!r} is not a served recommendation")
        event_id, stamp = label_id or f"lbl-{uuid.uuid4().hex}", iso(self.clock())
        event = LabelEvent(
            event_id, "label", event_id, reviewer_id, rec, label_value, conf, text, origin, stamp, stamp
        )
        with self._write(reviewer_id) as conn:
            existing = None  # a fresh random id cannot be stored yet; a given one may be
            if label_id is not None:
                query = sa.select(label_events).where(label_events.c.event_id == event_id)
                existing = conn.execute(query).first()
            if existing is not None:
                if existing.reviewer_id != reviewer_id or existing.kind != "label":
                    raise LabelError(f"label id {event_id[:80]!r} is taken")
                return LabelEvent.of_row(existing)
            if self._active_label(conn, reviewer_id, rec) is not None:
                raise AlreadyLabeled(f"you have already labeled {rec[:80]!r}; undo that label to change it")
            conn.execute(label_events.insert().values(**event.as_row()))
        return event

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
        target_id = check_id("label_id", label_id)
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
                return LabelEvent.of_row(done)
            stamp = iso(self.clock())
            event = LabelEvent(
                f"rtr-{uuid.uuid4().hex}",
                "retraction",
                target_id,
                reviewer.reviewer_id,
                target.recommendation_id,
                None,
                None,
                None,
                origin,
                stamp,
                stamp,
            )
            conn.execute(label_events.insert().values(**event.as_row()))
        return event

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
        return LabelEvent.of_row(row) if row else None

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
        labels = [{c: r[c] for c in LABEL_SCHEMA} for r in rows if r["kind"] == "label"]
        retractions = [
            {
                "label_id": r["label_id"],
                "recommendation_id": r["recommendation_id"],
                "retracted_by": r["reviewer_id"],
                "retracted_at": datetime.fromisoformat(r["labeled_at"]),
            }
            for r in rows
            if r["kind"] == "retraction"
        ]
        label_frame = pl.DataFrame(labels, schema=LABEL_SCHEMA)
        retraction_frame = pl.DataFrame(retractions, schema=RETRACTION_SCHEMA)
        return label_frame, retraction_frame

    def rejects_recorded_on(self, day: date) -> list[dict[str, Any]]:
        query = (
            sa.select(label_rejects)
            .where(label_rejects.c.recorded_day == day.isoformat())
            .order_by(label_rejects.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
