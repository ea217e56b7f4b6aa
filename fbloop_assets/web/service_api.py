"""The service API under ``/api/v1/``: suggestions for other systems, authorized by service tokens.

`POST /api/v1/suggestions` (scope ``suggest``), `GET /api/v1/campaigns/{id}` and
`GET /api/v1/weights/current` (scope ``read``, which ``suggest`` includes); the schema at
`GET /api/v1/openapi.json` needs no token. A request authorizes with ``Authorization: Bearer
<token>`` only: reviewers' session cookies mean nothing here (and tokens mean nothing to the
labeling app). Slates come from `lib.serving.live.LiveServing`, so a promotion or rollback serves
the next request, and each slate is in the slate log before its response leaves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fbloop_assets.lib.scoring.context import NoSuchCampaign
from fbloop_assets.lib.serving.live import LiveServing
from fbloop_assets.lib.serving.slate_log import SlateConflict
from fbloop_assets.lib.serving.suggest import NoEligibleCreator
from fbloop_assets.lib.serving.tokens import ServiceToken, ServiceTokens
from fbloop_assets.web.api import _jsonable
from fbloop_assets.web.openapi import CAMPAIGN_ID_PATTERN, MAX_K, REQUEST_ID_PATTERN, openapi_schema

log = logging.getLogger("fbloop.api")
Handler = Callable[[Request, ServiceToken], Awaitable[Response]]
_CAMPAIGN = re.compile(CAMPAIGN_ID_PATTERN)
_REQUEST = re.compile(REQUEST_ID_PATTERN)
_FIELDS = {"campaign_id", "k", "request_id"}


class Refused(HTTPException):
    """A refused call: status and a one-line reason for the caller."""


def _error(status: int, message: str) -> JSONResponse:
    headers = {"www-authenticate": 'Bearer realm="fbloop"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def authorized(scope: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Only with a live token whose scope allows ``scope``: 401 without one, 403 for the wrong scope."""

    async def wrapped(request: Request) -> Response:
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return _error(401, "a service token is required (Authorization: Bearer <token>)")
        tokens: ServiceTokens = request.app.state.tokens
        found = await run_in_threadpool(tokens.verify, token.strip())
        if found is None:
            return _error(401, "the service token is unknown or revoked")
        if not found.allows(scope):
            return _error(403, f"the token's scope ({found.scope}) does not allow {scope}")
        return await handler(request, found)

    return wrapped


def _suggestion_request(body: Any) -> tuple[str, int, str | None]:
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    if extra := sorted(set(body) - _FIELDS):
        raise Refused(400, f"unknown field(s): {', '.join(extra)[:200]}")
    campaign, k, request_id = body.get("campaign_id"), body.get("k", 10), body.get("request_id")
    if not isinstance(campaign, str) or not _CAMPAIGN.match(campaign):
        raise Refused(400, "campaign_id must be a campaign id (letters, digits, '.', '_', ':', '-')")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise Refused(400, f"k must be an integer from 1 to {MAX_K}")
    if request_id is not None and (not isinstance(request_id, str) or not _REQUEST.match(request_id)):
        raise Refused(400, "request_id must be 1-64 letters, digits, '.', '_', ':' or '-'")
    return campaign, k, request_id


async def suggestions(request: Request, token: ServiceToken) -> Response:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Refused(400, "the body must be JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except ValueError:
        raise Refused(400, "the body is not valid JSON") from None
    campaign, k, request_id = _suggestion_request(body)
    serving: LiveServing = request.app.state.serving
    try:
        slate = await run_in_threadpool(serving.suggest, campaign, k, request_id, f"token:{token.name}")
    except NoSuchCampaign as exc:
        raise Refused(404, str(exc)) from None
    except SlateConflict as exc:
        raise Refused(409, str(exc)) from None
    except NoEligibleCreator as exc:
        raise Refused(422, str(exc)) from None
    except FileNotFoundError as exc:  # no creators or campaigns materialized yet
        raise Refused(503, str(exc)) from None
    return JSONResponse(slate.as_dict())


async def campaign(request: Request, token: ServiceToken) -> Response:
    campaign_id = request.path_params["campaign_id"]
    if not _CAMPAIGN.match(campaign_id):
        raise Refused(400, "not a campaign id")
    serving: LiveServing = request.app.state.serving

    def look_up() -> dict[str, Any]:
        context = serving.context()
        row = context.campaign(campaign_id)
        return {
            "campaign": _jsonable(row),
            "eligible_creators": int(context.pool(campaign_id)[0].size),
            "scored_against": context.sources,
        }

    try:
        return JSONResponse(await run_in_threadpool(look_up))
    except NoSuchCampaign as exc:
        raise Refused(404, str(exc)) from None
    except FileNotFoundError as exc:
        raise Refused(503, str(exc)) from None


async def weights(request: Request, token: ServiceToken) -> Response:
    serving: LiveServing = request.app.state.serving
    arms = await run_in_threadpool(serving.arms)
    return JSONResponse(
        {
            "production": arms.production.as_dict(),
            "canary": arms.canary.as_dict() if arms.canary else None,
            "canary_share": arms.share,
        }
    )


async def schema(request: Request) -> Response:
    return JSONResponse(request.app.state.schema)


async def refused(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc, Refused) or exc.status_code == 413 else None
        words = {404: "there is nothing at this address", 405: "this address does not take that method"}
        return _error(exc.status_code, detail or words.get(exc.status_code, "refused"))
    log.exception("service API call failed: %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "something went wrong on our side; please retry with the same request_id")


def create_service_app(serving: LiveServing, tokens: ServiceTokens) -> Starlette:
    """The API as its own ASGI app, for `web.app` to mount at ``/api/v1``."""
    app = Starlette(
        routes=[
            Route("/suggestions", authorized("suggest", suggestions), methods=["POST"]),
            Route("/campaigns/{campaign_id}", authorized("read", campaign), methods=["GET"]),
            Route("/weights/current", authorized("read", weights), methods=["GET"]),
            Route("/openapi.json", schema, methods=["GET"]),
        ],
        exception_handlers={HTTPException: refused, Exception: refused},
    )
    app.state.serving, app.state.tokens, app.state.schema = serving, tokens, openapi_schema()
    return app
