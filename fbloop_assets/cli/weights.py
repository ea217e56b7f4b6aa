"""The registry's commands: weights history and show, promote, rollback."""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from fbloop_assets.cli.common import emit
from fbloop_assets.lib.lake import Lake, resolve_data_dir
from fbloop_assets.lib.registry import ALIASES, AliasMove, Registry


def actor() -> str:
    """Who runs the command: ``$FBLOOP_ACTOR``, else the login name."""
    return os.environ.get("FBLOOP_ACTOR") or getpass.getuser()


def _registry() -> Registry:
    return Registry.of(Lake(resolve_data_dir()))


def _render_moves(payload: dict[str, Any]) -> str:
    moves = payload["moves"]
    if not moves:
        return "no alias has moved yet (production is w0, the hand-set default)"
    lines = [f"{'at (UTC)':<25} {'alias':<10} {'from':<16} {'to':<16} {'by':<10} reason"]
    for m in moves:
        forced = " [forced]" if m["forced"] else ""
        lines.append(
            f"{m['at']:<25} {m['alias']:<10} {m['from_version'] or '–':<16} {m['to_version'] or '–':<16}"
            f" {m['actor']:<10} {m['reason']}{forced}"
        )
    lines.append("now: " + ", ".join(f"{a} {v or '–'}" for a, v in payload["aliases"].items()))
    return "\n".join(lines)


def cmd_history(args: argparse.Namespace) -> None:
    registry = _registry()
    moves = registry.history(args.alias)
    payload = {
        "aliases": {a: registry.current(a) for a in ALIASES},
        "moves": [m.as_dict() for m in moves],
    }
    emit(payload, args.json, _render_moves)


def _render_version(payload: dict[str, Any]) -> str:
    lineage = f"parent {payload['parent'] or '–'}, dataset {payload['dataset_version'] or '–'}"
    made = f"code {payload['code_version']}, created {payload['created_at']}"
    lines = [
        f"{payload['version']}: {lineage}, {made}",
        "weights: " + ", ".join(f"{f} {w:+.4f}" for f, w in payload["weights"].items()),
        "aliases now: " + (", ".join(payload["aliases_now"]) or "none"),
    ]
    for e in payload["evaluations"]:
        verdict = (
            "passed"
            if e["passed"]
            else "FAILED " + ", ".join(c["name"] for c in e["checks"] if not c["passed"])
        )
        lines.append(f"evaluated by the loop for {e['day']} against {e['production']}: {verdict}")
    for m in payload["moves"]:
        lines.append(
            f"{m['at']} {m['alias']}: {m['from_version'] or '–'} -> {m['to_version'] or '–'} ({m['reason']})"
        )
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> None:
    registry = _registry()
    version = registry.load(args.version)
    payload = version.as_dict() | {
        "aliases_now": [a for a in ALIASES if registry.current(a) == version.version],
        "evaluations": [e.__dict__ for e in registry.evaluations(version.version)],
        "moves": [m.as_dict() for m in registry.moves_of(version.version)],
    }
    emit(payload, args.json, _render_version)


def _render_move(payload: dict[str, Any]) -> str:
    move = payload["move"]
    if move is None:
        return f"{payload['alias']} already points at {payload['version']}: nothing moved"
    forced = " (forced past failed checks)" if move["forced"] else ""
    return (
        f"{move['alias']}: {move['from_version'] or '–'} -> {move['to_version']}{forced}, by {move['actor']}"
    )


def _moved(alias: str, version: str, moves: list[AliasMove | None]) -> dict[str, Any]:
    done = [m.as_dict() for m in moves if m is not None]
    return {"alias": alias, "version": version, "move": done[0] if done else None, "moves": done}


def cmd_promote(args: argparse.Namespace) -> None:
    registry = _registry()
    version = registry.load(args.version).version
    failed = registry.failed_checks(version)
    if failed and not args.force:
        raise PermissionError(
            f"{version} failed the blocking check(s) {', '.join(failed)}; pass --force to promote it anyway"
            " (the move records that it was forced)"
        )
    who = actor()
    evidence = {"failed_checks": failed}
    moves = [registry.move(args.to, version, args.reason, actor=who, forced=bool(failed), evidence=evidence)]
    if args.to == "production" and registry.current("canary") == version:
        moves.append(
            registry.move("canary", None, f"promoted to production by hand: {args.reason}", actor=who)
        )
    emit(_moved(args.to, version, moves), args.json, _render_move)


def cmd_rollback(args: argparse.Namespace) -> None:
    registry = _registry()
    current = registry.current("production")
    if args.to is None:
        history = registry.history("production")
        if not history:
            raise LookupError("production has never moved: nothing to roll back to")
        target = history[-1].from_version
        assert target is not None
    else:
        target = registry.load(args.to).version
    if target == current:
        raise ValueError(f"production already is {target}")
    # A rollback is a return to known-good weights: a running canary stops in the same step.
    targets: list[tuple[str, str | None]] = [("production", target), ("canary", None)]
    moves = registry.move_together(
        targets, f"rollback: {args.reason}", actor=actor(), evidence={"rolled_back": current}
    )
    emit(_moved("production", target, moves), args.json, _render_move)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the registry's commands to the `fbloop` parser."""
    weights = sub.add_parser("weights", help="the weights registry: versions and alias history")
    verbs = weights.add_subparsers(dest="weights_command", required=True, metavar="SUBCOMMAND")
    history = verbs.add_parser("history", help="every move of the aliases, oldest first")
    history.add_argument("--alias", choices=ALIASES, default=None, help="only this alias")
    history.add_argument("--json", action="store_true", help="print the history as JSON")
    history.set_defaults(func=cmd_history)
    show = verbs.add_parser("show", help="one version: weights, lineage, evaluations, alias moves")
    show.add_argument("version", help="a weights version (w0, w-...)")
    show.add_argument("--json", action="store_true", help="print the version as JSON")
    show.set_defaults(func=cmd_show)

    promote = sub.add_parser("promote", help="point an alias (staging, canary, production) at a version")
    promote.add_argument("version", help="the weights version to promote")
    promote.add_argument("--to", choices=ALIASES, required=True, help="the alias to move")
    promote.add_argument("--reason", required=True, help="why (recorded in the history)")
    promote.add_argument(
        "--force", action="store_true", help="promote even though a blocking check failed (recorded)"
    )
    promote.add_argument("--json", action="store_true", help="print the move as JSON")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="point production back at an earlier version, in one step")
    rollback.add_argument(
        "--to", default=None, help="the version to restore (default: the previous production)"
    )
    rollback.add_argument("--reason", required=True, help="why (recorded in the history)")
    rollback.add_argument("--json", action="store_true", help="print the move as JSON")
    rollback.set_defaults(func=cmd_rollback)
