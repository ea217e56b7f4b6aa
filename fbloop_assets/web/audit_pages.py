"""The analysts' pages under ``/audit``: lineage of a weights version, a label and a day, and the
loop's effect over time.

Each report page renders `lib.audit.report.audit`, the same function `fbloop audit KIND SUBJECT
--json` prints; ``?format=json`` returns that document byte for byte as the command prints it.
The effect page draws `lib.audit.effect.loop_effect` as server-rendered SVG charts
(`web.charts`). Only analysts and admins (and reviewers with ``labeling.reviewers_read_audits``)
get here (`auth.signed_in(need="audit")`).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fbloop_assets.lib.audit.effect import loop_days, loop_effect
from fbloop_assets.lib.audit.report import audit
from fbloop_assets.lib.weights.registry import Registry, UnknownVersion
from fbloop_assets.web.auth import signed_in
from fbloop_assets.web.charts import CHARTS, render_svg
from fbloop_assets.web.common import Problem, page

KINDS = {"weights": "weights", "label": "label", "day": "partition"}
SUBJECT = re.compile(r"[A-Za-z0-9._:@-]{1,100}")


def number(value: object) -> str:
    """A value as an analyst reads it: thousands separated, three significant digits, – for none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def flat(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """A check's nested value or threshold as (dotted key, formatted value) pairs."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, inner in value.items():
            pairs += flat(inner, f"{prefix}{key}.")
        return pairs
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return [(prefix.rstrip("."), ", ".join(number(v) for v in value) or "none")]
    return [(prefix.rstrip("."), number(value))]


def as_json(payload: dict[str, Any]) -> str:
    """The document exactly as `fbloop audit ... --json` prints it (`cli.common.emit`)."""
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"


def _registry(request: Request) -> Registry:
    return Registry.of(request.app.state.lake)


def _report(request: Request, kind: str, subject: str) -> dict[str, Any]:
    events = request.app.state.events
    if kind == "weights" and events is None:
        raise Problem(503, "this server has no Dagster instance (DAGSTER_HOME) to read runs from")
    try:
        return audit(request.app.state.lake, _registry(request), events, kind, subject)
    except UnknownVersion:
        raise Problem(404, f"no weights version {subject!r}") from None
    except ValueError as exc:
        raise Problem(400, str(exc)) from None


def _index(request: Request) -> dict[str, Any]:
    registry = _registry(request)
    aliases = {a: registry.current(a) for a in ("production", "canary", "staging")}
    versions = sorted(registry.versions(), key=lambda v: v.created_at, reverse=True)
    return {"versions": versions, "aliases": aliases, "days": loop_days(request.app.state.lake)[::-1]}


async def index_page(request: Request) -> Response:
    label = request.query_params.get("label", "").strip()
    if label:
        if not SUBJECT.fullmatch(label):
            raise Problem(400, "a label id has letters, digits and . _ : @ - only")
        return RedirectResponse(f"/audit/label/{label}", status_code=303)
    return page(request, "audit_index.html", await run_in_threadpool(_index, request))


async def report_page(request: Request) -> Response:
    kind = KINDS.get(request.path_params["kind"], "")
    subject = request.path_params["subject"]
    if not kind or not SUBJECT.fullmatch(subject):
        raise Problem(404, "there is nothing at this address")
    if kind == "partition":
        try:
            subject = date.fromisoformat(subject).isoformat()
        except ValueError:
            raise Problem(400, f"not a date (YYYY-MM-DD): {subject!r}") from None
    report = await run_in_threadpool(_report, request, kind, subject)
    if request.query_params.get("format") == "json":
        return Response(as_json(report), media_type="application/json")
    return page(request, f"audit_{request.path_params['kind']}.html", {"report": report})


def _effect(request: Request) -> dict[str, Any]:
    state = request.app.state
    return loop_effect(state.lake, _registry(request), state.events)


async def effect_page(request: Request) -> Response:
    effect = await run_in_threadpool(_effect, request)
    if request.query_params.get("format") == "json":
        return Response(as_json(effect), media_type="application/json")
    return page(request, "audit_effect.html", {"effect": effect, "charts": list(CHARTS)})


async def chart(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in CHARTS:
        raise Problem(404, "there is no such chart")
    effect = await run_in_threadpool(_effect, request)
    svg = await run_in_threadpool(render_svg, name, effect)
    return Response(svg, media_type="image/svg+xml", headers={"cache-control": "no-store"})


ROUTES = [
    Route("/audit", signed_in(index_page, need="audit"), methods=["GET"]),
    Route("/audit/effect", signed_in(effect_page, need="audit"), methods=["GET"]),
    Route("/audit/effect/{name}.svg", signed_in(chart, need="audit"), methods=["GET"]),
    Route("/audit/{kind:str}/{subject:str}", signed_in(report_page, need="audit"), methods=["GET"]),
]
