"""`fbloop tune`: campaign tuning suggestions, and the owner's accept / reject decisions on them."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from fbloop_assets.cli.common import emit, iso_date
from fbloop_assets.lib.common.lake import Lake, resolve_data_dir


def _money_or_rate(kpi: str, value: float | None) -> str:
    from fbloop_assets.lib.tuning.suggestions import KPIS

    for pair in KPIS.values():
        for k in pair:
            if k.name == kpi:
                return k.format(value)
    return "n/a" if value is None else f"{value:.4g}"


def _render(payload: dict[str, Any]) -> str:
    c = payload["campaign"]
    lines = [
        f"Campaign {c['campaign_id']} ({c['objective']}), suggestions of {payload['day']} from "
        f"{c['records']:,} posts by {c['creators']:,} creators over {len(payload['serving_days'])} "
        "complete days.",
        f"Its {c['kpi'].replace('_', ' ')} so far: {_money_or_rate(c['kpi'], c['baseline'])}.",
        "",
    ]
    if c["held"]:
        lines.append(f"No new suggestions: {c['held']}.")
    elif not c["suggestions"]:
        lines.append("No change is backed by enough evidence right now; nothing to do.")
    for i, s in enumerate(c["suggestions"], 1):
        status = f" [{s['decision']['decision']}: {s['decision']['reason']}]" if s.get("decision") else ""
        lines += [
            f"{i}. {s['change'][0].upper()}{s['change'][1:]}{status}",
            f"   {s['parameter']}: {s['current']} -> {s['proposed']}",
            f"   expected {s['kpi'].replace('_', ' ')}: {_money_or_rate(s['kpi'], s['baseline'])} -> "
            f"{_money_or_rate(s['kpi'], s['expected'])} ({s['expected_change']:+.0%}, likely between "
            f"{s['ci_low']:+.0%} and {s['ci_high']:+.0%}), from {s['records']:,} posts",
            f"   {s['rationale']}",
            f"   To apply it: fbloop tune accept {s['id']} --reason '...'  (or reject)",
            "",
        ]
    return "\n".join(lines).rstrip()


def cmd_show(args: argparse.Namespace) -> None:
    from fbloop_assets.lib.common.store import open_data_store
    from fbloop_assets.lib.tuning.record import TuningRecord
    from fbloop_assets.lib.tuning.store import decisions

    lake = Lake(resolve_data_dir())
    record = asdict(TuningRecord.read(lake, args.date) if args.date else TuningRecord.newest(lake))
    found = [c for c in record["campaigns"] if c["campaign_id"] == args.campaign]
    if not found:
        raise LookupError(
            f"campaign {args.campaign!r} was not active on {record['day']} (no suggestions computed)"
        )
    campaign = found[0]
    decided = {d["suggestion_id"]: d for d in decisions(open_data_store(lake.root), args.campaign)}
    for s in campaign["suggestions"]:
        d = decided.get(s["id"])
        s["decision"] = {k: d[k] for k in ("decision", "reason", "actor", "at")} if d else None
    payload = {
        "day": record["day"],
        "serving_days": record["serving_days"],
        "campaign": campaign,
        "tracking": [t for t in record["tracking"] if t["campaign_id"] == args.campaign],
    }
    emit(payload, args.json, _render)


def _cmd_decide(decision: str) -> Any:
    def run(args: argparse.Namespace) -> None:
        from fbloop_assets.lib.common.store import open_data_store
        from fbloop_assets.lib.tuning.store import decide

        row = decide(open_data_store(resolve_data_dir()), args.suggestion_id, decision, args.reason)
        s = row["suggestion"]
        emit(
            row,
            args.json,
            lambda r: (
                f"{decision} {s['id']} for {s['campaign_id']}: {s['change']} "
                f"({s['parameter']}: {s['current']} -> {s['proposed']}); reason: {r['reason']}"
            ),
        )

    return run


def register(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune",
        help="campaign tuning suggestions, and accept / reject decisions on them",
        description="Show a campaign's tuning suggestions (--campaign ID), or accept / reject one.",
    )
    tune.add_argument("--campaign", help="the campaign whose suggestions to show")
    tune.add_argument("--date", type=iso_date, help="the loop day (default: the newest materialized)")
    tune.add_argument("--json", action="store_true", help="print one JSON document")
    actions = tune.add_subparsers(dest="tune_action", metavar="accept|reject")
    for name in ("accept", "reject"):
        action = actions.add_parser(name, help=f"{name} a suggestion")
        action.add_argument("suggestion_id", metavar="SUGGESTION_ID")
        action.add_argument("--reason", required=True, help="why (stored with the decision)")
        action.add_argument("--json", action="store_true", help="print one JSON document")
        action.set_defaults(func=_cmd_decide("accepted" if name == "accept" else "rejected"))

    def show(args: argparse.Namespace) -> None:
        if not args.campaign:
            raise ValueError("fbloop tune needs --campaign ID (or accept|reject SUGGESTION_ID --reason TEXT)")
        cmd_show(args)

    tune.set_defaults(func=show)
