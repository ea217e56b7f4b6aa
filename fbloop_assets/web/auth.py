"""Signing in and out, the server-side session behind every request, and the CSRF rule.

- `Sessions` (ASGI middleware) resolves the ``fbloop_session`` cookie to a live session in fbloop's
  database (`lib.labeling.accounts`) before any handler runs (``request.state.session``; None
  without one) and gives every browser a random ``fbloop_visitor`` cookie, which the CSRF token of
  the sign-in form is bound to. A session cookie that opens nothing any more (expired, signed out,
  reviewer deactivated) is deleted. Cookies are HttpOnly, SameSite=Lax, Secure with
  ``labeling.https_only``; the session cookie lasts until the session's absolute expiry.
- `signed_in`: a handler for a signed-in, active reviewer only; else 401 (API) or the sign-in page;
  ``need="label"`` (reviewers and admins), ``"audit"`` (analysts, admins, and reviewers with
  ``labeling.reviewers_read_audits``) or ``"admin"`` refuse others with 403.
- `state_change`: a POST refused (403) without the CSRF token of the request's session.
- `login`: the sign-in throttle (`lib.labeling.throttle`) answers 429 with Retry-After before any
  password is checked; at most ``labeling.password_checks_at_once`` Argon2id checks (64 MiB each)
  run at once, and the attempts beyond wait in the event loop, holding neither a thread nor memory.
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import quote

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.labeling.throttle import SignIn, sign_in
from fbloop_assets.web.common import (
    Handler,
    Problem,
    csrf_token,
    is_api,
    page,
    read_body,
    safe_next,
    session_of,
)
from fbloop_assets.web.security import CSRF_FIELD, CSRF_HEADER, csrf_matches

SESSION_COOKIE = "fbloop_session"
VISITOR_COOKIE = "fbloop_visitor"
MAX_COOKIE = 100


def _cookie(name: str, value: str, https_only: bool, max_age: int | None = None) -> bytes:
    text = f"{name}={value}; Path=/; HttpOnly; SameSite=lax"
    if max_age is not None:
        text += f"; Max-Age={max_age}"
    return (text + ("; Secure" if https_only else "")).encode()


class Sessions:
    """ASGI middleware: ``request.state.session`` and ``request.state.visitor`` for every request."""

    def __init__(self, app: ASGIApp, accounts: Accounts, https_only: bool) -> None:
        self.app = app
        self.accounts = accounts
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the service API authorizes by token alone: no session, no visitor cookie
        if scope["type"] != "http" or scope["path"].startswith(("/static/", "/api/v1/")):
            await self.app(scope, receive, send)
            return
        cookies = Request(scope).cookies
        token = cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(self.accounts.session, token) if token else None
        visitor = cookies.get(VISITOR_COOKIE, "")
        extra = []
        if not 20 <= len(visitor) <= MAX_COOKIE:
            visitor = secrets.token_urlsafe(24)
            extra.append(_cookie(VISITOR_COOKIE, visitor, self.https_only))
        forget = token is not None and session is None
        state = scope.setdefault("state", {})
        state["session"], state["visitor"] = session, visitor

        async def with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                sets_session = any(
                    k == b"set-cookie" and v.startswith(SESSION_COOKIE.encode() + b"=") for k, v in headers
                )
                dropped = (
                    [_cookie(SESSION_COOKIE, "", self.https_only, 0)] if forget and not sets_session else []
                )
                message["headers"] = headers + [(b"set-cookie", c) for c in extra + dropped]
            await send(message)

        await self.app(scope, receive, with_cookies)


REFUSALS = {
    "label": "labeling is for reviewers; an analyst account reads the audit pages",
    "audit": "the audit pages are for analysts and admins",
    "admin": "this page is for admins",
}


def allowed(request: Request, need: str | None) -> bool:
    """Whether the signed-in account may do ``need`` (label, audit, admin; None: anything signed-in)."""
    session = session_of(request)
    if session is None:
        return False
    who = session.reviewer
    if need == "label":
        return who.can_label
    if need == "audit":
        return who.can_audit(request.app.state.config.labeling.reviewers_read_audits)
    return need is None or (need == "admin" and who.is_admin)


def signed_in(handler: Handler, admin: bool = False, need: str | None = None) -> Handler:
    """Only for a signed-in, active reviewer (from the server-side session alone); else 401 or sign-in.

    ``need`` (or ``admin``) also requires that permission; else 403."""
    need = "admin" if admin else need

    async def wrapped(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            if is_api(request):
                return JSONResponse({"error": "sign in first"}, status_code=401)
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if need is not None and not allowed(request, need):
            raise Problem(403, REFUSALS[need])
        return await handler(request)

    return wrapped


def state_change(handler: Handler) -> Handler:
    """A POST that changes state: refused (403) without the CSRF token of the request's session."""

    async def wrapped(request: Request) -> Response:
        body = await read_body(request)
        submitted = request.headers.get(CSRF_HEADER) or body.get(CSRF_FIELD)
        if not csrf_matches(csrf_token(request), submitted):
            raise Problem(
                403, "the form has expired or did not come from this site; reload the page and try again"
            )
        request.state.body = body
        return await handler(request)

    return wrapped


async def login_page(request: Request) -> Response:
    return page(request, "login.html", {"next": safe_next(request.query_params.get("next")), "error": None})


def _password_slots(state: Any) -> anyio.CapacityLimiter:
    # created on first use: a CapacityLimiter needs the running event loop
    if state.password_slots is None:
        state.password_slots = anyio.CapacityLimiter(state.config.labeling.password_checks_at_once)
    limiter: anyio.CapacityLimiter = state.password_slots
    return limiter


async def _sign_in(request: Request, name: str, password: str) -> SignIn:
    state = request.app.state
    client = request.client.host if request.client else "unknown"
    wait = await run_in_threadpool(state.throttle.retry_after, name, client)
    if wait is not None:  # refused before it waits for a password check
        return SignIn(None, wait)
    return await anyio.to_thread.run_sync(
        sign_in, state.accounts, state.throttle, name, password, client, limiter=_password_slots(state)
    )


def _refusal(request: Request, body: dict[str, Any], status: int, message: str) -> Response:
    if is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return page(request, "login.html", {"next": safe_next(body.get("next")), "error": message}, status)


@state_change
async def login(request: Request) -> Response:
    body = request.state.body
    name, password = str(body.get("name", ""))[:64], str(body.get("password", ""))[:1024]
    outcome = await _sign_in(request, name, password)
    if outcome.retry_after is not None:
        minutes = math.ceil(outcome.retry_after / 60)
        message = (
            "Too many failed sign-ins for this name or from this address; "
            f"try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        refused = _refusal(request, body, 429, message)
        refused.headers["Retry-After"] = str(outcome.retry_after)
        return refused
    if outcome.reviewer is None:
        return _refusal(request, body, 401, "That name and password do not match.")
    config = request.app.state.config.labeling
    start = request.app.state.accounts.start_session
    token, session = await run_in_threadpool(start, outcome.reviewer, config.session_hours)
    request.state.session = session  # from now on the CSRF token is the new session's
    if is_api(request):
        payload = {"reviewer": session.reviewer.reviewer_id, "role": session.reviewer.role}
        response: Response = JSONResponse(payload | {"csrf_token": csrf_token(request)})
    else:
        target = safe_next(body.get("next"))
        if not session.reviewer.can_label and not target.startswith("/audit"):
            target = "/audit"
        response = RedirectResponse(target, status_code=303)
    max_age = math.floor(config.session_hours * 3600)
    response.raw_headers.append((b"set-cookie", _cookie(SESSION_COOKIE, token, config.https_only, max_age)))
    return response


@state_change
async def logout(request: Request) -> Response:
    """Sign out: ends every session of the reviewer, on every device."""
    session = session_of(request)
    if session is not None:
        await run_in_threadpool(request.app.state.accounts.end_sessions, session.reviewer.reviewer_id)
    request.state.session = None
    response: Response = (
        JSONResponse({"signed_in": False}) if is_api(request) else RedirectResponse("/login", status_code=303)
    )
    https_only = request.app.state.config.labeling.https_only
    response.raw_headers.append((b"set-cookie", _cookie(SESSION_COOKIE, "", https_only, 0)))
    return response


async def api_session(request: Request) -> Response:
    return JSONResponse({"signed_in": session_of(request) is not None, "csrf_token": csrf_token(request)})
