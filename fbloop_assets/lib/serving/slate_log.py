"""The slate log: every served slate, committed to fbloop's database before anyone sees it.

`fbloop suggest` and the HTTP API (`POST /api/v1/suggestions`) write here instead of one landing
file per request: a slate is one transaction of its rows, committed before the response is sent,
so a crash either loses the request unanswered or keeps the slate. `record` is idempotent by
request id: a retry gets the slate stored the first time (and two concurrent retries store one).
The next `raw_recommendations` partition reads the day's rows (`on_day`) through the same typing,
validation and quarantine as a landing file (`lib.ingest.store_slates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.ingest.landing import COLUMNS, typed_schema

CONTRACT = [c.name for c in COLUMNS["recommendations"]]
LOGGED_SCHEMA = pl.Schema(typed_schema("recommendations"))

slate_log = sa.Table(
    "slate_log",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recommendation_id", sa.String(120), nullable=False, unique=True),
    sa.Column("request_id", sa.String(80), nullable=False, index=True),
    sa.Column("campaign_id", sa.String(120), nullable=False),
    sa.Column("creator_id", sa.String(120), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("weights_version", sa.String(40), nullable=False),
    sa.Column("served_at", sa.String(40), nullable=False),
    sa.Column("served_day", sa.String(10), nullable=False, index=True),
    sa.Column("client", sa.String(64), nullable=False),
)


class SlateConflict(ValueError):
    """A request id whose recommendation ids another request's slate holds already."""


@dataclass(frozen=True)
class Logged:
    """A slate as stored: its rows (contract columns, rank order) and whether it was stored before."""

    rows: pl.DataFrame
    replayed: bool


def _frame(rows: list[dict]) -> pl.DataFrame:
    typed = [r | {"served_at": datetime.fromisoformat(r["served_at"])} for r in rows]
    return (
        pl.DataFrame(typed, schema=LOGGED_SCHEMA, orient="row")
        if typed
        else pl.DataFrame(schema=LOGGED_SCHEMA)
    )


class SlateLog:
    """The slate log in fbloop's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, request_id: str) -> pl.DataFrame | None:
        """The slate stored for ``request_id``, or None."""
        table = slate_log
        query = sa.select(*(table.c[c] for c in CONTRACT)).where(table.c.request_id == request_id)
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query.order_by(table.c.rank))]
        return _frame(rows) if rows else None

    def record(self, served: pl.DataFrame, client: str) -> Logged:
        """Store one request's slate (``served``: rows of one request id) unless it is stored already.

        The insert comes first and a stored slate is read only when it fails (a retry, or a
        concurrent retry that stored it first): a new request, the common case, costs one
        transaction and no read.
        """
        request_ids = served["request_id"].unique().to_list()
        if len(request_ids) != 1:
            raise ValueError(f"one slate at a time, got {len(request_ids)} request ids")
        contract = served.select(CONTRACT)
        served_at = [t.isoformat() for t in contract["served_at"]]
        rows = [
            r | {"served_at": at, "served_day": at[:10], "client": client[:64]}
            for r, at in zip(contract.drop("served_at").to_dicts(), served_at, strict=True)
        ]
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(slate_log), rows)
        except sa.exc.IntegrityError:
            stored = self.get(request_ids[0])
            if stored is None:
                raise SlateConflict(
                    f"request id {request_ids[0]!r} maps to recommendation ids another request holds"
                ) from None
            return Logged(stored, replayed=True)
        return Logged(contract, replayed=False)

    def on_day(self, day: date) -> pl.DataFrame:
        """The rows served on ``day`` (UTC), in the order they were logged."""
        table = slate_log
        query = sa.select(*(table.c[c] for c in CONTRACT)).where(table.c.served_day == day.isoformat())
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query.order_by(table.c.id))]
        return _frame(rows)

    def count(self) -> tuple[int, int]:
        """(slates, rows) in the log."""
        table = slate_log
        query = sa.select(sa.func.count(sa.distinct(table.c.request_id)), sa.func.count())
        with self.engine.connect() as connection:
            slates, rows = connection.execute(query.select_from(table)).one()
        return int(slates), int(rows)
