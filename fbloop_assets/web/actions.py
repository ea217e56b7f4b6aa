"""What the pages and the JSON API both do: read the queue and an item, record and undo labels.

The reviewer is always the signed-in one (`common.reviewer_of`), never a field of the body.
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.labeling.accounts import Reviewer
from fbloop_assets.lib.labeling.events import (
    MAX_ID,
    AlreadyLabeled,
    LabelError,
    NotFound,
    UnknownRecommendation,
    validate_label,
)
from fbloop_assets.lib.labeling.queue import build_queue, item_card
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.common import Problem, reviewer_of


def queue(request: Request, limit: int) -> pl.DataFrame:
    """The signed-in reviewer's next ``limit`` items (see `lib.labeling.queue`)."""
    state = request.app.state
    served: ServedRecommendations = state.served
    config: FbloopConfig = state.config
    days = served.latest_days(config.labeling.queue_days)
    labels = state.store.label_counts()
    reviewer = reviewer_of(request).reviewer_id
    return build_queue(served.rows(), labels, reviewer, days, config.labeling.double_label_share, limit)


def item(request: Request, recommendation_id: str) -> dict[str, Any]:
    """One served recommendation with its card; 404 when no valid serving-log row has it."""
    rows = request.app.state.served.rows().filter(pl.col("recommendation_id") == recommendation_id)
    if not rows.height:
        raise Problem(404, "no such served recommendation")
    found = rows.row(0, named=True)
    return found | {"card": item_card(request.app.state.lake, found)}


def label_input(body: dict[str, Any]) -> tuple[str, str, float, str | None]:
    rec = body.get("recommendation_id")
    if not isinstance(rec, str) or not rec.strip() or len(rec) > MAX_ID:
        raise LabelError("choose a recommendation to label")
    value, confidence, comment = validate_label(
        body.get("label_value"), body.get("confidence"), body.get("comment")
    )
    return rec.strip(), value, confidence, comment


def _idempotent_id(reviewer: Reviewer, key: object) -> str | None:
    if not isinstance(key, str) or not key.strip():
        return None
    if len(key) > 200:
        raise Problem(400, "the idempotency key is longer than 200 characters")
    return "lbl-" + hashlib.sha256(f"{reviewer.reviewer_id}\0{key}".encode()).hexdigest()[:32]


async def record(request: Request, origin: str) -> dict[str, Any]:
    """Store the body's label for the signed-in reviewer; the event."""
    body = request.state.body
    reviewer = reviewer_of(request)
    key = request.headers.get("idempotency-key") or body.get("idempotency_key")
    store: LabelStore = request.app.state.store
    try:
        rec, value, confidence, comment = label_input(body)
        label_id = _idempotent_id(reviewer, key)
        event = await run_in_threadpool(
            store.record_label, reviewer.reviewer_id, rec, value, confidence, comment, origin, label_id
        )
    except UnknownRecommendation as exc:
        raise Problem(404, str(exc)) from None
    except AlreadyLabeled as exc:
        raise Problem(409, str(exc)) from None
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    return event.as_dict()


async def retract(request: Request, origin: str) -> dict[str, Any]:
    """Undo the path's label (the reviewer's own; an admin's: anyone's); the retraction event."""
    store: LabelStore = request.app.state.store
    try:
        event = await run_in_threadpool(
            store.retract, request.path_params["label_id"], reviewer_of(request), origin
        )
    except NotFound as exc:
        raise Problem(404, str(exc)) from None
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    return event.as_dict()
