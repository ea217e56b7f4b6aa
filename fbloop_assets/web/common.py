"""What every handler of the web app shares: refusals, the signed-in reviewer, bodies, pages.

Errors are shown as messages (an HTML page, or ``{"error": ...}`` under ``/api/``), never as stack
traces. Templates autoescape everything.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from fbloop_assets.lib.labeling.accounts import Reviewer, Session
from fbloop_assets.lib.labeling.wording import confidence
from fbloop_assets.web.security import csrf_for

Handler = Callable[[Request], Awaitable[Response]]
SAFE_AUDIT = re.compile(r"/audit/(weights|label|day)/[A-Za-z0-9._:@-]{1,100}")
VALUE_WORDS = {"useful": "Useful", "not_useful": "Not useful"}
MAX_BODY = 16_384  # bytes of a request body: a form or a label with a 1,000-character comment fits


class Problem(HTTPException):
    """A refused request: status and a message for the reviewer."""


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def safe_next(target: object) -> str:
    """Where to go after a form: only pages of this app (no open redirect)."""
    if isinstance(target, str) and SAFE_AUDIT.fullmatch(target):
        return target
    return target if target in ("/queue", "/history", "/audit", "/audit/effect") else "/queue"


def session_of(request: Request) -> Session | None:
    """The request's live server-side session (`auth.Sessions` resolved it from the cookie)."""
    session: Session | None = getattr(request.state, "session", None)
    return session


def reviewer_of(request: Request) -> Reviewer:
    """The signed-in reviewer: only in handlers behind `auth.signed_in`."""
    session = session_of(request)
    assert session is not None, "reviewer_of outside auth.signed_in"
    return session.reviewer


async def read_body(request: Request) -> dict[str, Any]:
    """The request's form or JSON body as a dict (`middleware.BodyLimit` bounds its size)."""
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


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's session, or of its visitor cookie before sign-in."""
    session = session_of(request)
    if session is not None:
        return csrf_for(request.app.state.secret, f"session:{session.token_hash}")
    visitor = getattr(request.state, "visitor", None)  # `auth.Sessions` sets it on every request
    if not visitor:
        return secrets.token_urlsafe(32)  # matches nothing
    return csrf_for(request.app.state.secret, f"visitor:{visitor}")


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """Render template ``name`` with the reviewer, the CSRF token and ``context``."""
    templates: Jinja2Templates = request.app.state.templates
    session = session_of(request)
    base = {
        "csrf_token": csrf_token(request),
        "reviewer": session.reviewer if session else None,
        "value_words": VALUE_WORDS,
        "confidence_words": confidence,
        "can_audit": session is not None
        and session.reviewer.can_audit(request.app.state.config.labeling.reviewers_read_audits),
    }
    return templates.TemplateResponse(request, name, base | context, status_code=status)
