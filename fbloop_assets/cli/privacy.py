"""The privacy commands: the export audit (`exports list`), erasure and consent withdrawal."""

from __future__ import annotations

import argparse
from typing import Any

from fbloop_assets.cli.common import emit as _emit
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add the privacy commands to the `fbloop` parser."""
    exports = sub.add_parser("exports", help="the audit of every training export")
    esub = exports.add_subparsers(dest="exports_command", required=True, metavar="SUBCOMMAND")
    listing = esub.add_parser("list", help="every export: who, when, parameters, file, rows, SHA-256")
    listing.add_argument("--json", action="store_true", help="print the exports as JSON")
    listing.set_defaults(func=cmd_exports_list)
