"""The reviewers' web app (`fbloop serve`): sign in, label the queue, confirm, undo; a JSON API.

Pages: ``/login``, ``/queue`` (the next item: campaign brief, creator card, outcomes so far; useful
or not useful with a confidence), ``/queue/confirm`` (the confirmation step), ``/history`` (the
reviewer's labels, each with undo), ``/admin`` (admins: reviewers, counts, agreement). The JSON
API under ``/api/`` offers the same actions under the same session and CSRF rules.

The reviewer is whoever the signed session cookie says, never a field of a form or JSON body.
Every POST needs the session's CSRF token. Templates autoescape everything; errors are shown as
messages (HTML or JSON), never as stack traces; the server log keeps the details.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from fbloop_assets.lib.common.agreement import label_agreement
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.queue import build_queue, item_card
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import (
    MAX_ID,
    AlreadyLabeled,
    LabelError,
    LabelStore,
    NotFound,
    Reviewer,
    UnknownRecommendation,
    validate_label,
)
from fbloop_assets.web.security import CSRF_FIELD, CSRF_HEADER, SecurityHeaders, csrf_token, csrf_valid

HERE = Path(__file__).resolve().parent
log = logging.getLogger("fbloop.web")
Handler = Callable[[Request], Awaitable[Response]]
CONFIDENCE_LEVELS = (
    (0.2, "1", "a guess"),
    (0.4, "2", "unsure"),
    (0.6, "3", "fairly sure"),
    (0.8, "4", "sure"),
    (1.0, "5", "certain"),
)
VALUE_WORDS = {"useful": "Useful", "not_useful": "Not useful"}
MAX_BODY = 16_384


class Problem(HTTPException):
    """A refused request: status and a message for the reviewer."""


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _reviewer(request: Request) -> Reviewer:
    reviewer: Reviewer = request.state.reviewer
    return reviewer


def signed_in(handler: Handler, admin: bool = False) -> Handler:
    """Only for a signed-in, active reviewer (from the session alone); else 401 or the sign-in page."""

    async def wrapped(request: Request) -> Response:
        store: LabelStore = request.app.state.store
        name = request.session.get("reviewer")
        reviewer = await run_in_threadpool(store.reviewer, name) if isinstance(name, str) else None
        if reviewer is None:
            request.session.pop("reviewer", None)
            if _is_api(request):
                return JSONResponse({"error": "sign in first"}, status_code=401)
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if admin and not reviewer.is_admin:
            raise Problem(403, "this page is for admins")
        request.state.reviewer = reviewer
        return await handler(request)

    return wrapped


async def _body(request: Request) -> dict[str, Any]:
    """The request's form or JSON body as a dict (size-limited)."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise Problem(413, "the request is too large")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            raise Problem(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Problem(400, "the body must be a JSON object")
        return data
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def state_change(handler: Handler) -> Handler:
    """A POST that changes state: refused (403) without the session's CSRF token."""

    async def wrapped(request: Request) -> Response:
        body = await _body(request)
        submitted = request.headers.get(CSRF_HEADER) or body.get(CSRF_FIELD)
        if not csrf_valid(request, submitted):
            raise Problem(
                403, "the form has expired or did not come from this site; reload the page and try again"
            )
        request.state.body = body
        return await handler(request)

    return wrapped


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    reviewer = getattr(request.state, "reviewer", None)
    base = {"csrf_token": csrf_token(request), "reviewer": reviewer, "value_words": VALUE_WORDS}
    return templates.TemplateResponse(request, name, base | context, status_code=status)


def _flash(request: Request, message: str, undo: str | None = None) -> None:
    request.session["flash"] = {"message": message, "undo": undo}


def _safe_next(target: object) -> str:
    return target if target in ("/queue", "/history") else "/queue"


# pages ------------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return _page(request, "login.html", {"next": _safe_next(request.query_params.get("next")), "error": None})


@state_change
async def login(request: Request) -> Response:
    body = request.state.body
    store: LabelStore = request.app.state.store
    name, password = str(body.get("name", ""))[:64], str(body.get("password", ""))[:1024]
    reviewer = await run_in_threadpool(store.authenticate, name, password)
    if reviewer is None:
        if _is_api(request):
            return JSONResponse({"error": "that name and password do not match"}, status_code=401)
        context = {"next": _safe_next(body.get("next")), "error": "That name and password do not match."}
        return _page(request, "login.html", context, 401)
    request.session.clear()  # a fresh session (and CSRF token) on sign-in: no fixation
    request.session["reviewer"] = reviewer.reviewer_id
    request.session["signed_in_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    token = csrf_token(request)
    if _is_api(request):
        return JSONResponse({"reviewer": reviewer.reviewer_id, "role": reviewer.role, "csrf_token": token})
    return RedirectResponse(_safe_next(body.get("next")), status_code=303)


@state_change
async def logout(request: Request) -> Response:
    request.session.clear()
    if _is_api(request):
        return JSONResponse({"signed_in": False})
    return RedirectResponse("/login", status_code=303)


async def home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


def _queue(request: Request, limit: int) -> pl.DataFrame:
    app = request.app.state
    served: ServedRecommendations = app.served
    config: FbloopConfig = app.config
    rows = served.rows()
    days = served.latest_days(config.labeling.queue_days)
    labels = app.store.label_counts()
    return build_queue(
        rows, labels, _reviewer(request).reviewer_id, days, config.labeling.double_label_share, limit
    )


def _item(request: Request, recommendation_id: str) -> dict[str, Any]:
    rows = request.app.state.served.rows().filter(pl.col("recommendation_id") == recommendation_id)
    if not rows.height:
        raise Problem(404, "no such served recommendation")
    item = rows.row(0, named=True)
    item["propensity"] = float(item["propensity"])
    return item | {"card": item_card(request.app.state.lake, item)}


async def queue_page(request: Request) -> Response:
    config: FbloopConfig = request.app.state.config
    queue = await run_in_threadpool(_queue, request, config.labeling.queue_size + 1)
    items = queue.to_dicts()
    current = None
    if items:
        current = items[0] | {"card": await run_in_threadpool(item_card, request.app.state.lake, items[0])}
    flash = request.session.pop("flash", None)
    return _page(
        request,
        "queue.html",
        {"item": current, "upcoming": items[1:], "flash": flash, "levels": CONFIDENCE_LEVELS, "error": None},
    )


def _label_input(body: dict[str, Any]) -> tuple[str, str, float, str | None]:
    rec = body.get("recommendation_id")
    if not isinstance(rec, str) or not rec.strip() or len(rec) > MAX_ID:
        raise LabelError("choose a recommendation to label")
    value, confidence, comment = validate_label(
        body.get("label_value"), body.get("confidence"), body.get("comment")
    )
    return rec.strip(), value, confidence, comment


@state_change
async def confirm_page(request: Request) -> Response:
    try:
        rec, value, confidence, comment = _label_input(request.state.body)
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    if rec not in request.app.state.served:
        raise Problem(404, f"{rec[:80]!r} is not a served recommendation")
    item = await run_in_threadpool(_item, request, rec)
    context = {"item": item, "value": value, "confidence": confidence, "comment": comment}
    return _page(request, "confirm.html", context)


def _idempotent_id(reviewer: Reviewer, key: object) -> str | None:
    if not isinstance(key, str) or not key.strip():
        return None
    if len(key) > 200:
        raise Problem(400, "the idempotency key is longer than 200 characters")
    return "lbl-" + hashlib.sha256(f"{reviewer.reviewer_id}\0{key}".encode()).hexdigest()[:32]


async def _record(request: Request, origin: str) -> dict[str, Any]:
    body = request.state.body
    reviewer = _reviewer(request)
    try:
        rec, value, confidence, comment = _label_input(body)
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    key = request.headers.get("idempotency-key") or body.get("idempotency_key")
    store: LabelStore = request.app.state.store
    try:
        event = await run_in_threadpool(
            store.record_label,
            reviewer.reviewer_id,
            rec,
            value,
            confidence,
            comment,
            origin,
            _idempotent_id(reviewer, key),
        )
    except UnknownRecommendation as exc:
        raise Problem(404, str(exc)) from None
    except AlreadyLabeled as exc:
        raise Problem(409, str(exc)) from None
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    return event.as_dict()


@signed_in
@state_change
async def submit_label(request: Request) -> Response:
    event = await _record(request, "web")
    words = VALUE_WORDS[event["label_value"]]
    _flash(
        request,
        f"Saved: {words} (confidence {event['confidence']:.1f}) for {event['recommendation_id']}.",
        undo=event["label_id"],
    )
    return RedirectResponse("/queue", status_code=303)


async def _retract(request: Request, origin: str) -> dict[str, Any]:
    store: LabelStore = request.app.state.store
    try:
        event = await run_in_threadpool(
            store.retract, request.path_params["label_id"], _reviewer(request), origin
        )
    except NotFound as exc:
        raise Problem(404, str(exc)) from None
    except LabelError as exc:
        raise Problem(400, str(exc)) from None
    return event.as_dict()


@signed_in
@state_change
async def undo_label(request: Request) -> Response:
    event = await _retract(request, "web")
    _flash(request, f"Undone: your label on {event['recommendation_id']} is withdrawn.")
    return RedirectResponse(_safe_next(request.state.body.get("next")), status_code=303)


async def history_page(request: Request) -> Response:
    store: LabelStore = request.app.state.store
    rows = await run_in_threadpool(store.history, _reviewer(request).reviewer_id)
    return _page(request, "history.html", {"rows": rows, "flash": request.session.pop("flash", None)})


async def admin_page(request: Request) -> Response:
    store: LabelStore = request.app.state.store

    def gather() -> dict[str, Any]:
        rows = store.history(None, limit=100_000)
        active = (
            pl.DataFrame(
                [r for r in rows if r["retracted_at"] is None],
                schema={"recommendation_id": pl.String, "reviewer_id": pl.String, "label_value": pl.String},
                orient="row",
            )
            if rows
            else pl.DataFrame(
                schema={"recommendation_id": pl.String, "reviewer_id": pl.String, "label_value": pl.String}
            )
        )
        per_reviewer: dict[str, int] = {}
        for r in rows:
            if r["retracted_at"] is None:
                per_reviewer[r["reviewer_id"]] = per_reviewer.get(r["reviewer_id"], 0) + 1
        return {
            "reviewers": store.list_reviewers(),
            "per_reviewer": per_reviewer,
            "events": store.count_events(),
            "agreement": label_agreement(active),
        }

    return _page(request, "admin.html", await run_in_threadpool(gather))


# JSON API ---------------------------------------------------------------------------------------


async def api_session(request: Request) -> Response:
    name = request.session.get("reviewer")
    return JSONResponse({"signed_in": isinstance(name, str), "csrf_token": csrf_token(request)})


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime) or hasattr(v, "isoformat"):
            out[k] = v.isoformat()
        elif isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        else:
            out[k] = v
    return out


async def api_queue(request: Request) -> Response:
    try:
        limit = min(max(int(request.query_params.get("limit", "20")), 1), 200)
    except ValueError:
        raise Problem(400, "limit must be an integer") from None
    queue = await run_in_threadpool(_queue, request, limit)
    return JSONResponse({"items": [_jsonable(r) for r in queue.to_dicts()]})


async def api_item(request: Request) -> Response:
    item = await run_in_threadpool(_item, request, request.path_params["recommendation_id"])
    card = item.pop("card")
    return JSONResponse(
        {
            "item": _jsonable(item),
            "card": _jsonable(card)
            | {"campaign": _jsonable(card["campaign"] or {}), "creator": _jsonable(card["creator"] or {})},
        }
    )


@signed_in
@state_change
async def api_label(request: Request) -> Response:
    return JSONResponse(await _record(request, "api"), status_code=201)


@signed_in
@state_change
async def api_retract(request: Request) -> Response:
    return JSONResponse(await _retract(request, "api"))


async def api_history(request: Request) -> Response:
    store: LabelStore = request.app.state.store
    rows = await run_in_threadpool(store.history, _reviewer(request).reviewer_id)
    return JSONResponse({"labels": [_jsonable(r) for r in rows]})


# errors -----------------------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "unexpected error"
    if status == 404 and not isinstance(exc, Problem):
        detail = "there is nothing at this address"
    elif status == 405:
        detail = "this address does not take that kind of request"
    if _is_api(request):
        return JSONResponse({"error": detail}, status_code=status)
    return _page(request, "message.html", {"status": status, "message": detail}, status)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("request failed: %s %s", request.method, request.url.path, exc_info=exc)
    message = "something went wrong on our side; please try again"
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=500)
    return Response(
        f"<!doctype html><title>Error</title><p>{message}.</p>", status_code=500, media_type="text/html"
    )


def create_app(
    lake: Lake,
    config: FbloopConfig,
    secret: str,
    store: LabelStore | None = None,
    served: ServedRecommendations | None = None,
) -> Starlette:
    """The web app over ``lake``'s served recommendations and label store."""
    from fbloop_assets.lib.common.store import open_data_store

    served = served or ServedRecommendations(lake)
    store = store or LabelStore(open_data_store(lake.root), served)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/queue", signed_in(queue_page), methods=["GET"]),
        Route("/queue/confirm", signed_in(confirm_page), methods=["POST"]),
        Route("/labels", submit_label, methods=["POST"]),
        Route("/labels/{label_id}/undo", undo_label, methods=["POST"]),
        Route("/history", signed_in(history_page), methods=["GET"]),
        Route("/admin", signed_in(admin_page, admin=True), methods=["GET"]),
        Route("/api/session", api_session, methods=["GET"]),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/queue", signed_in(api_queue), methods=["GET"]),
        Route("/api/recommendations/{recommendation_id}", signed_in(api_item), methods=["GET"]),
        Route("/api/labels", api_label, methods=["POST"]),
        Route("/api/labels/{label_id}/retract", api_retract, methods=["POST"]),
        Route("/api/history", signed_in(api_history), methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="fbloop_session",
                max_age=round(config.labeling.session_hours * 3600),
                same_site="lax",
                https_only=config.labeling.https_only,
            ),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.lake = lake
    app.state.config = config
    app.state.served = served
    app.state.store = store
    app.state.templates = Jinja2Templates(env=env)
    return app
