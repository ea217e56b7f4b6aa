"""The reviewers' HTML pages: the queue, the confirmation step, saving and undo, history, admin.

``/queue`` shows the next item (campaign brief, creator card, outcomes so far) and asks useful or
not useful with a confidence; ``/queue/confirm`` is the confirmation step (nothing is saved
before it); ``/history`` lists the reviewer's labels, each with undo; ``/admin`` (admins) shows
reviewers, counts, agreement and the serving-log rows the queue skipped as invalid. A one-time
message (saved, undone) travels in the server-side session.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fbloop_assets.lib.common.agreement import label_agreement
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.labeling.events import LabelError
from fbloop_assets.lib.labeling.queue import item_card
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.lib.labeling.wording import CONFIDENCE_LEVELS, confidence, reasons, with_names
from fbloop_assets.web.actions import item, label_input, queue, record, retract
from fbloop_assets.web.auth import state_change
from fbloop_assets.web.common import VALUE_WORDS, Problem, page, reviewer_of, safe_next, session_of


async def _flash(request: Request, message: str, undo: str | None = None) -> None:
    session = session_of(request)
    if session is not None:
        await run_in_threadpool(
            request.app.state.accounts.set_flash, session, {"message": message, "undo": undo}
        )


async def _take_flash(request: Request) -> dict[str, Any] | None:
    session = session_of(request)
    if session is None or session.flash is None:
        return None
    await run_in_threadpool(request.app.state.accounts.set_flash, session, None)
    return session.flash


async def home(request: Request) -> Response:
    session = session_of(request)
    labels = session is None or session.reviewer.can_label
    return RedirectResponse("/queue" if labels else "/audit", status_code=303)


def _named(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return with_names(request.app.state.lake, request.app.state.served.rows(), rows)


async def queue_page(request: Request) -> Response:
    config: FbloopConfig = request.app.state.config
    items = (await run_in_threadpool(queue, request, config.labeling.queue_size + 1)).to_dicts()
    current = None
    if items:
        current = items[0] | {"card": await run_in_threadpool(item_card, request.app.state.lake, items[0])}
    upcoming = await run_in_threadpool(_named, request, [u | {"why": reasons(u)} for u in items[1:]])
    context = {
        "item": current,
        "upcoming": upcoming,
        "flash": await _take_flash(request),
        "levels": CONFIDENCE_LEVELS,
        "error": None,
    }
    return page(request, "queue.html", context)


@state_change
async def confirm_page(request: Request) -> Response:
    try:
        rec, value, confidence, comment = label_input(request.state.body)
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    if rec not in request.app.state.served:
        raise Problem(404, f"{rec[:80]!r} is not a served recommendation")
    found = (await run_in_threadpool(_named, request, [await run_in_threadpool(item, request, rec)]))[0]
    context = {"item": found, "value": value, "confidence": confidence, "comment": comment}
    return page(request, "confirm.html", context)


@state_change
async def submit_label(request: Request) -> Response:
    event = await record(request, "web")
    words = VALUE_WORDS[event["label_value"]]
    message = f"Saved: {words} ({confidence(event['confidence'])}) for {event['recommendation_id']}."
    await _flash(request, message, undo=event["label_id"])
    return RedirectResponse("/queue", status_code=303)


@state_change
async def undo_label(request: Request) -> Response:
    event = await retract(request, "web")
    await _flash(request, f"Undone: your label on {event['recommendation_id']} is withdrawn.")
    return RedirectResponse(safe_next(request.state.body.get("next")), status_code=303)


async def history_page(request: Request) -> Response:
    store: LabelStore = request.app.state.store
    rows = await run_in_threadpool(store.history, reviewer_of(request).reviewer_id)
    rows = await run_in_threadpool(_named, request, rows)
    return page(request, "history.html", {"rows": rows, "flash": await _take_flash(request)})


def _admin_view(request: Request) -> dict[str, Any]:
    state = request.app.state
    rows = [r for r in state.store.history(None, limit=100_000) if r["retracted_at"] is None]
    schema = {"recommendation_id": pl.String, "reviewer_id": pl.String, "label_value": pl.String}
    active = pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema)
    per_reviewer: dict[str, int] = {}
    for r in rows:
        per_reviewer[r["reviewer_id"]] = per_reviewer.get(r["reviewer_id"], 0) + 1
    return {
        "reviewers": state.accounts.list_reviewers(),
        "per_reviewer": per_reviewer,
        "events": state.store.count_events(),
        "agreement": label_agreement(active),
        "invalid_served": state.served.invalid(),
    }


async def admin_page(request: Request) -> Response:
    return page(request, "admin.html", await run_in_threadpool(_admin_view, request))
