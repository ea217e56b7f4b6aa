"""The web app's security plumbing: the session secret, CSRF tokens and response headers.

- The session cookie is Starlette's `SessionMiddleware` (signed with itsdangerous, HttpOnly,
  SameSite=Lax, Secure when ``labeling.https_only``); its secret comes from
  ``$FBLOOP_SESSION_SECRET`` or from ``<data>/secrets/session_secret`` (created once, mode 0600).
- CSRF: a synchronizer token, random per session (`secrets.token_urlsafe`), stored in the signed
  session and required on every state-changing request as the form field ``csrf_token`` or the
  header ``X-CSRF-Token``; compared in constant time.
- Every response carries a Content-Security-Policy (scripts and styles from this origin only, no
  framing) and the usual hardening headers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fbloop_assets.lib.common.lake import atomic_path

SECRET_ENV = "FBLOOP_SESSION_SECRET"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MIN_SECRET_CHARS = 32


def session_secret(data_dir: Path) -> str:
    """``$FBLOOP_SESSION_SECRET``, else the secret file under the data directory (made once, 0600)."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        if len(from_env) < MIN_SECRET_CHARS:
            raise ValueError(f"{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters")
        return from_env
    path = data_dir / "secrets" / "session_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_path(path) as tmp:  # mkstemp creates the file with mode 0600
            tmp.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8").strip()


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_valid(request: Request, submitted: object) -> bool:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
        return False
    return secrets.compare_digest(expected.encode(), submitted.encode())


HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware adding `HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
