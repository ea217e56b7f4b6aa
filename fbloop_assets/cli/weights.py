"""The registry's commands: weights history and show, promote, rollback, and the audit trails."""

from __future__ import annotations

import argparse
from typing import Any

from fbloop_assets.cli import privacy
from fbloop_assets.cli.common import emit, iso_date
from fbloop_assets.lib.common.lake import Lake, resolve_data_dir
from fbloop_assets.lib.common.store import current_actor
from fbloop_assets.lib.weights.registry import ALIASES, AliasMove, Registry


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
    who = current_actor()
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
        targets, f"rollback: {args.reason}", actor=current_actor(), evidence={"rolled_back": current}
    )
    emit(_moved("production", target, moves), args.json, _render_move)


def _render_served(served: list[dict[str, Any]]) -> str:
    if not served:
        return "never served traffic"
    return "; ".join(
        f"{s['alias']} from {s['since']}" + (f" until {s['until']}" if s["until"] else "") for s in served
    )


def _render_audit(payload: dict[str, Any]) -> str:
    if "weights_versions" in payload:  # a label or a partition
        subject = (
            f"label {payload['label_id']}" if "label_id" in payload else f"partition {payload['partition']}"
        )
        lines = [f"{subject} fed {len(payload['datasets'])} dataset version(s):"]
        for d in payload["datasets"]:
            lines.append(f"  {d['version'] if isinstance(d, dict) else d}")
        for v in payload["weights_versions"]:
            lines.append(f"  -> {v['version']} (from {v['dataset_version']}): {_render_served(v['served'])}")
        return "\n".join(lines)
    lines = [
        f"{payload['version']}: parent {payload['parent'] or '–'}, code {payload['code_version']},"
        + f" created {payload['created_at']}",
        f"served: {_render_served(payload['served'])}",
    ]
    dataset = payload["dataset"]
    if dataset is None:
        lines.append("no dataset: the hand-set default or a version made by hand")
    else:
        manifest = dataset["manifest"]
        missing = sum(map(len, manifest["partitions_missing"].values()))
        lines += [
            f"dataset {dataset['version']} (run {dataset['run_id']}): {manifest['record_count']:,} records,"
            + f" serving days {manifest['serving_days'][0]} to {manifest['serving_days'][-1]}",
            f"  partitions read: {len(dataset['partitions'])}, missing: {missing}",
            "  signals: " + ", ".join(f"{k} {n:,}" for k, n in dataset["signals_by_source_and_type"].items()),
            "  labels by reviewer: "
            + ", ".join(f"{k} {n:,}" for k, n in dataset["labels_by_reviewer"].items()),
            f"  consent exclusions in the days read: {dataset['consent_exclusions']:,}",
        ]
    for e in payload["evaluations"]:
        checks = ", ".join(f"{c['name']} {'passed' if c['passed'] else 'FAILED'}" for c in e["checks"])
        lines.append(f"evaluated for {e['day']} against {e['production']}: {checks}")
    for m in payload["alias_moves"]:
        moved = f"{m['from_version'] or '–'} -> {m['to_version'] or '–'}"
        lines.append(f"{m['at']} {m['alias']}: {moved} by {m['actor']}: {m['reason']}")
    return "\n".join(lines)


def cmd_audit(args: argparse.Namespace) -> None:
    import dagster as dg

    from fbloop_assets.daily_run import ensure_dagster_home
    from fbloop_assets.lib.audit.report import audit
    from fbloop_assets.lineage import InstanceEventLog

    lake = Lake(resolve_data_dir())
    registry = Registry.of(lake)
    subject = args.subject
    if args.audit_command == "partition":
        subject = iso_date(subject).isoformat()
    if args.audit_command != "weights":
        payload = audit(lake, registry, None, args.audit_command, subject)
    else:
        ensure_dagster_home()
        with dg.DagsterInstance.get() as instance:
            payload = audit(lake, registry, InstanceEventLog(instance), args.audit_command, subject)
    emit(payload, args.json, _render_audit)


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

    audit = sub.add_parser("audit", help="lineage: what shaped a weights version; what a label or day fed")
    kinds = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBJECT")
    for kind, what, help_text in (
        (
            "weights",
            "version",
            "the dataset, partitions, runs, signals, labels, checks and moves behind a version",
        ),
        ("label", "label_id", "every dataset and weights version a label fed, and whether they served"),
        ("partition", "date", "every dataset and weights version a day's partitions fed (YYYY-MM-DD)"),
    ):
        parser = kinds.add_parser(kind, help=help_text)
        parser.add_argument("subject", metavar=what.upper(), help=f"the {what.replace('_', ' ')}")
        parser.add_argument("--json", action="store_true", help="print the audit as JSON")
        parser.set_defaults(func=cmd_audit)
    erasures = kinds.add_parser("erasures", help="every erasure and withdrawal, the datasets it superseded")
    erasures.add_argument("--json", action="store_true", help="print the audit as JSON")
    erasures.set_defaults(func=privacy.cmd_audit_erasures)
