"""The privacy commands: the export audit (`exports list`), erasure and consent withdrawal."""

from __future__ import annotations

import argparse
from typing import Any

from fbloop_assets.cli.common import emit as _emit
from fbloop_assets.cli.common import progress as _progress
from fbloop_assets.lib.common.lake import resolve_data_dir


def _render_exports(payload: dict[str, Any]) -> str:
    rows = payload["exports"]
    if not rows:
        return "no export recorded"
    lines = [f"{'id':>4}  {'when (UTC)':<25} {'who':<16} {'status':<9} {'rows':>8}  sha256        file"]
    for r in rows:
        sha = (r["sha256"] or "–")[:12]
        gone = "" if r["file_present"] else "  (file gone)"
        lines.append(
            f"{r['id']:>4}  {r['exported_at'][:25]:<25} {r['actor'][:16]:<16} {r['status']:<9}"
            f" {r['rows']:>8,}  {sha:<12}  {r['file']}{gone}"
        )
    return "\n".join(lines)


def cmd_exports_list(args: argparse.Namespace) -> None:
    from fbloop_assets.lib.common.store import open_data_store
    from fbloop_assets.lib.dataset.export_audit import list_exports

    _emit({"exports": list_exports(open_data_store(resolve_data_dir()))}, args.json, _render_exports)


def _actor() -> Any:
    from fbloop_assets.lib.audit.erasure import Actor
    from fbloop_assets.lib.common.config import load_config
    from fbloop_assets.lib.common.privacy import load_key
    from fbloop_assets.lib.common.store import current_actor
    from fbloop_assets.lib.serving.suggest import now_utc

    config = load_config()
    key = load_key(resolve_data_dir())
    return Actor(current_actor(), now_utc(), key, config.privacy.mode, config.export.group)


def _subject_ids(args: argparse.Namespace) -> list[str]:
    """The raw ids of ``--subject`` and ``--subjects-file`` (one a line); read, never stored."""
    from pathlib import Path

    ids = list(args.subject or [])
    if args.subjects_file:
        try:
            ids += Path(args.subjects_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read --subjects-file {args.subjects_file}: {exc.strerror}") from None
    ids = [i.strip() for i in ids if i.strip()]
    if not ids:
        raise ValueError("give --subject ID or --subjects-file FILE")
    return ids


def _render_erasure(payload: dict[str, Any]) -> str:
    lines = []
    for s in payload["erased"]:
        lines.append(
            f"erasure {s['record']}: pseudonym {s['pseudonym'][:12]}…, {s['rows_removed']:,} rows removed"
            f" from {len(s['files'])} file(s), days {', '.join(s['days']) or 'none'}"
        )
        superseded = s["datasets_superseded"]
        lines += [f"  superseded dataset {d['version']} (loop day {d['loop_day']})" for d in superseded]
        lines += [f"  export {e['id']} held it: {e['file']}" for e in s["exports_holding"]]
        lines += [f"  export {e['export']} rewritten: {e['file']}" for e in s["exports_rewritten"]]
    if any(s["datasets_superseded"] for s in payload["erased"]):
        lines.append("re-run the affected days (fbloop run --date D) to build the replacement datasets")
    return "\n".join(lines)


def cmd_erase(args: argparse.Namespace) -> None:
    from fbloop_assets.lib.audit.erasure import erase
    from fbloop_assets.lib.common.lake import Lake
    from fbloop_assets.lib.common.store import open_data_store

    ids, actor = _subject_ids(args), _actor()
    lake = Lake(resolve_data_dir())
    _progress(f"erasing {len(set(ids))} subject(s) from {lake.root}")
    erased = erase(lake, open_data_store(lake.root), ids, args.reason, actor, args.rewrite_exports)
    _emit({"erased": erased}, args.json, _render_erasure)


def cmd_consent_withdraw(args: argparse.Namespace) -> None:
    from fbloop_assets.lib.audit.erasure import withdraw
    from fbloop_assets.lib.common.store import open_data_store

    actor = _actor()
    done = withdraw(open_data_store(resolve_data_dir()), args.subject, args.reason, actor)
    _emit(done, args.json, lambda d: f"withdrawal {d['record']}: {d['pseudonym'][:12]}… suppressed")


def _render_erasure_audit(payload: dict[str, Any]) -> str:
    if not payload["erasures"]:
        return "no erasure or withdrawal recorded"
    lines = []
    for e in payload["erasures"]:
        lines.append(
            f"{e['kind']} {e['record']} at {e['recorded_at']} by {e['actor']}: {e['reason']}"
            f" (pseudonym {e['pseudonym'][:12]}…, {e['rows_removed']:,} rows from {e['files']} file(s))"
        )
        for d in e["datasets"]:
            then = d["replacement"] or f"no replacement yet (re-run {d['loop_day']})"
            lines.append(f"  dataset {d['version']} (loop day {d['loop_day']}) superseded -> {then}")
        lines += [f"  export {x['id']} held it: {x['file']}" for x in e["exports_holding"]]
    return "\n".join(lines)


def cmd_audit_erasures(args: argparse.Namespace) -> None:
    from fbloop_assets.lib.audit.erasure import erasure_report
    from fbloop_assets.lib.common.lake import Lake
    from fbloop_assets.lib.common.store import open_data_store

    lake = Lake(resolve_data_dir())
    _emit(erasure_report(lake, open_data_store(lake.root)), args.json, _render_erasure_audit)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the privacy commands to the `fbloop` parser."""
    exports = sub.add_parser("exports", help="the audit of every training export")
    esub = exports.add_subparsers(dest="exports_command", required=True, metavar="SUBCOMMAND")
    listing = esub.add_parser("list", help="every export: who, when, parameters, file, rows, SHA-256")
    listing.add_argument("--json", action="store_true", help="print the exports as JSON")
    listing.set_defaults(func=cmd_exports_list)

    erase = sub.add_parser("erase", help="erase subjects on request: rows removed, suppressed, recorded")
    erase.add_argument("--subject", action="append", help="a raw subject id (repeatable; never stored)")
    erase.add_argument("--subjects-file", default=None, help="a file of raw subject ids, one a line")
    erase.add_argument("--reason", required=True, help="why (recorded with the erasure)")
    erase.add_argument(
        "--rewrite-exports", action="store_true", help="rewrite the training exports that held the subjects"
    )
    erase.add_argument("--json", action="store_true", help="print what was erased as JSON")
    erase.set_defaults(func=cmd_erase)

    consent = sub.add_parser("consent", help="consent withdrawal: a subject suppressed from now on")
    csub = consent.add_subparsers(dest="consent_command", required=True, metavar="SUBCOMMAND")
    withdraw = csub.add_parser("withdraw", help="suppress a subject's future signals; nothing stored touched")
    withdraw.add_argument("--subject", required=True, help="the raw subject id (never stored)")
    withdraw.add_argument("--reason", default="consent withdrawn", help="recorded with the withdrawal")
    withdraw.add_argument("--json", action="store_true", help="print the record as JSON")
    withdraw.set_defaults(func=cmd_consent_withdraw)
