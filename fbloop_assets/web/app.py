"""The reviewers' web app (`fbloop serve`): sign in, label the queue, confirm, undo; a JSON API.

`create_app` wires the pieces: `pages` (HTML), `audit_pages` (the analysts' ``/audit``), `api`
(JSON under ``/api/``), `auth` (sessions in
fbloop's database, sign-in with its throttle, CSRF) and `middleware` (the request-body limit and
security headers). The reviewer is whoever the server-side session says, never a field of a form
or JSON body; every POST needs the session's CSRF token. Errors are shown as messages (HTML or
JSON), never as stack traces; the server log keeps the details.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from fbloop_assets.lib.audit.report import EventLog
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.lib.labeling.throttle import SignInThrottle, ThrottleLimits
from fbloop_assets.lib.serving.live import LiveServing
from fbloop_assets.lib.serving.tokens import ServiceTokens
from fbloop_assets.web import api, audit_pages, auth, pages
from fbloop_assets.web.auth import signed_in
from fbloop_assets.web.common import MAX_BODY, Problem, is_api, page
from fbloop_assets.web.middleware import BodyLimit, SecurityHeaders
from fbloop_assets.web.service_api import create_service_app

HERE = Path(__file__).resolve().parent
log = logging.getLogger("fbloop.web")


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "unexpected error"
    if status == 404 and not isinstance(exc, Problem):
        detail = "there is nothing at this address"
    elif status == 405:
        detail = "this address does not take that kind of request"
    if is_api(request):
        return JSONResponse({"error": detail}, status_code=status)
    return page(request, "message.html", {"status": status, "message": detail}, status)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("request failed: %s %s", request.method, request.url.path, exc_info=exc)
    message = "something went wrong on our side; please try again"
    if is_api(request):
        return JSONResponse({"error": message}, status_code=500)
    return Response(
        f"<!doctype html><title>Error</title><p>{message}.</p>", status_code=500, media_type="text/html"
    )


async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever the page links: the same icon, served locally."""
    return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")


ROUTES = [
    Route("/", pages.home),
    Route("/favicon.ico", favicon),
    Route("/login", auth.login_page, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/queue", signed_in(pages.queue_page, need="label"), methods=["GET"]),
    Route("/queue/confirm", signed_in(pages.confirm_page, need="label"), methods=["POST"]),
    Route("/labels", signed_in(pages.submit_label, need="label"), methods=["POST"]),
    Route("/labels/{label_id}/undo", signed_in(pages.undo_label, need="label"), methods=["POST"]),
    Route("/history", signed_in(pages.history_page, need="label"), methods=["GET"]),
    Route("/admin", signed_in(pages.admin_page, admin=True), methods=["GET"]),
    Route("/api/session", auth.api_session, methods=["GET"]),
    Route("/api/login", auth.login, methods=["POST"]),
    Route("/api/logout", auth.logout, methods=["POST"]),
    Route("/api/queue", signed_in(api.api_queue, need="label"), methods=["GET"]),
    Route("/api/recommendations/{recommendation_id}", signed_in(api.api_item, need="label"), methods=["GET"]),
    Route("/api/labels", signed_in(api.api_label, need="label"), methods=["POST"]),
    Route("/api/labels/{label_id}/retract", signed_in(api.api_retract, need="label"), methods=["POST"]),
    Route("/api/history", signed_in(api.api_history, need="label"), methods=["GET"]),
    *audit_pages.ROUTES,
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def create_app(
    lake: Lake,
    config: FbloopConfig,
    secret: str,
    store: LabelStore | None = None,
    served: ServedRecommendations | None = None,
    accounts: Accounts | None = None,
    serving: LiveServing | None = None,
    events: EventLog | None = None,
) -> Starlette:
    """The web app over ``lake``'s served recommendations, label store and reviewer accounts.

    Without ``accounts``, reviewers and sessions live on the store's engine and clock; without
    ``serving``, the service API (mounted at ``/api/v1``) serves from the store's engine. ``events``
    (Dagster's event log) lets the audit of a weights version name the runs behind it.
    """
    from fbloop_assets.lib.common.store import open_data_store

    served = served or ServedRecommendations(lake)
    store = store or LabelStore(open_data_store(lake.root), served)
    accounts = accounts or Accounts(store.engine, store.clock)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    serving = serving or LiveServing(lake, store.engine, config.canary.share, config.serving.temperature)
    service = create_service_app(serving, ServiceTokens(store.engine))
    env.filters |= {"num": audit_pages.number, "flat": audit_pages.flat}
    app = Starlette(
        routes=[Mount("/api/v1", app=service), *ROUTES],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, max_bytes=MAX_BODY),
            Middleware(auth.Sessions, accounts=accounts, https_only=config.labeling.https_only),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.lake = lake
    app.state.config = config
    app.state.secret = secret
    app.state.served = served
    app.state.store = store
    app.state.accounts = accounts
    app.state.serving = serving
    app.state.events = events
    app.state.throttle = SignInThrottle(store.engine, ThrottleLimits.of(config.labeling), accounts.clock)
    app.state.password_slots = None  # `auth` makes the limiter on the first sign-in
    app.state.templates = Jinja2Templates(env=env)
    return app
