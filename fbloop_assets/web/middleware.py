"""ASGI middleware of the web app: a streaming request-body limit and the security headers.

`BodyLimit` refuses a request body above its limit with 413 before the body is read: at once when
``Content-Length`` announces too much, and for a chunked (or understated) body as soon as the
bytes that have arrived pass the limit; the app reads nothing further, and the server closes the
connection instead of draining the rest. Without it Starlette reads a whole body into memory
before any check (`benchmarks/web_abuse.py` measures what a 200 MB chunked POST costs).

`SecurityHeaders` gives every response a Content-Security-Policy (scripts and styles from this
origin only, no framing) and the usual hardening headers.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit; the app shows it as any refusal."""


class BodyLimit:
    """Refuse request bodies above ``max_bytes`` (413) before reading them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"the request is too large (at most {max_bytes // 1024} KiB)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            await self._refuse(scope, send, status, self.message if status == 413 else "bad Content-Length")
            return
        received = 0
        started = over = False

        async def counted() -> Message:
            nonlocal received, over
            if over:  # never read past the limit, even if the app asks again
                raise BodyTooLarge(413, self.message)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLarge(413, self.message)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over:  # the rest of the body is still on its way: do not keep the connection
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send, 413, self.message)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
        if scope["path"].startswith("/api/"):
            body, kind = json.dumps({"error": message}).encode(), b"application/json"
        else:
            body, kind = f"<!doctype html><title>Refused</title><p>{message}.</p>".encode(), b"text/html"
        headers = [(b"content-type", kind), (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


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
