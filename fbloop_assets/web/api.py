"""The JSON API under ``/api/``: the same actions as the pages, under the same session and CSRF rules.

`GET /api/queue`, `GET /api/recommendations/{id}`, `POST /api/labels` (201, the event; an
``Idempotency-Key`` makes a retried request return the same label), `POST
/api/labels/{id}/retract`, `GET /api/history`; signing in and out is `auth`'s.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.actions import item, queue, record, retract
from fbloop_assets.web.auth import state_change
from fbloop_assets.web.common import Problem, reviewer_of


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
    items = await run_in_threadpool(queue, request, limit)
    return JSONResponse({"items": [_jsonable(r) for r in items.to_dicts()]})


async def api_item(request: Request) -> Response:
    found = await run_in_threadpool(item, request, request.path_params["recommendation_id"])
    card = found.pop("card")
    return JSONResponse(
        {
            "item": _jsonable(found),
            "card": _jsonable(card)
            | {"campaign": _jsonable(card["campaign"] or {}), "creator": _jsonable(card["creator"] or {})},
        }
    )


@state_change
async def api_label(request: Request) -> Response:
    return JSONResponse(await record(request, "api"), status_code=201)


@state_change
async def api_retract(request: Request) -> Response:
    return JSONResponse(await retract(request, "api"))


async def api_history(request: Request) -> Response:
    store: LabelStore = request.app.state.store
    rows = await run_in_threadpool(store.history, reviewer_of(request).reviewer_id)
    return JSONResponse({"labels": [_jsonable(r) for r in rows]})
