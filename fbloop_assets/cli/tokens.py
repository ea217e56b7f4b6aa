"""Service tokens for the HTTP suggestion API: `fbloop tokens add|list|revoke`."""

from __future__ import annotations

import argparse
from typing import Any

from fbloop_assets.cli.common import emit
from fbloop_assets.lib.common.lake import Lake, resolve_data_dir
from fbloop_assets.lib.common.store import current_actor, open_data_store
from fbloop_assets.lib.serving.tokens import SCOPES, ServiceTokens


def _tokens() -> ServiceTokens:
    return ServiceTokens(open_data_store(Lake(resolve_data_dir()).root))


def _render_added(p: dict[str, Any]) -> str:
    return (
        f"token {p['name']} (scope {p['scope']}); it is shown only this once:\n{p['token']}\n"
        "send it as the header  Authorization: Bearer <token>"
    )


def cmd_tokens_add(args: argparse.Namespace) -> None:
    token = _tokens().add(args.name, args.scope, current_actor())
    emit({"name": args.name, "scope": args.scope, "token": token}, args.json, _render_added)


def _render_list(p: dict[str, Any]) -> str:
    if not p["tokens"]:
        return "no service tokens"
    return "\n".join(
        f"{t['name']:<24} {t['scope']:<8} created {t['created_at']} by {t['created_by']}"
        + (f", revoked {t['revoked_at']}" if t["revoked_at"] else "")
        for t in p["tokens"]
    )


def cmd_tokens_list(args: argparse.Namespace) -> None:
    emit({"tokens": [t.as_dict() for t in _tokens().list()]}, args.json, _render_list)


def cmd_tokens_revoke(args: argparse.Namespace) -> None:
    record = _tokens().revoke(args.name).as_dict()
    emit(record, args.json, lambda p: f"revoked {p['name']} at {p['revoked_at']}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `tokens` commands to the `fbloop` parser."""
    tokens = sub.add_parser("tokens", help="service tokens for the HTTP suggestion API")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = tsub.add_parser("add", help="create a token (printed once; only its hash is stored)")
    add.add_argument("name", help="who the token is for (unique)")
    add.add_argument("--scope", choices=SCOPES, required=True, help="suggest (slates and reads) or read")
    add.add_argument("--json", action="store_true", help="print the token as JSON")
    add.set_defaults(func=cmd_tokens_add)
    listing = tsub.add_parser("list", help="every token's name, scope and state (never the token)")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(func=cmd_tokens_list)
    revoke = tsub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name", help="the token's name")
    revoke.add_argument("--json", action="store_true", help="print the revoked token's record as JSON")
    revoke.set_defaults(func=cmd_tokens_revoke)
