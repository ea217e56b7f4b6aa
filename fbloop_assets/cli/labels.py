"""Human labels: `fbloop serve` (the reviewers' web app), `fbloop reviewers add|deactivate|activate`,
`fbloop labels import`."""

from __future__ import annotations

import argparse
import getpass
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fbloop_assets.cli.common import emit, progress
from fbloop_assets.lib.common.config import load_config
from fbloop_assets.lib.common.lake import Lake, resolve_data_dir
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.labeling.accounts import ROLES, Accounts
from fbloop_assets.lib.labeling.imports import FORMATS, import_labels
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore


def _store(lake: Lake) -> LabelStore:
    return LabelStore(open_data_store(lake.root), ServedRecommendations(lake))


# What a served app holds open (Dagster's instance for the audit pages) lives as long as its process.
_PROCESS = ExitStack()


def serve_app() -> Any:
    """The labeling app and the service API for the data directory and configuration of the
    environment: what `fbloop serve` runs, and what each of its ``--workers`` processes builds
    (uvicorn calls it as a factory in every worker)."""
    from fbloop_assets.lib.serving.live import CONTEXT_POLL_SECONDS, LiveServing
    from fbloop_assets.web.app import create_app
    from fbloop_assets.web.security import session_secret

    lake = Lake(resolve_data_dir())
    config = load_config()
    serving = LiveServing(lake, open_data_store(lake.root), config.canary.share, config.serving.temperature)
    try:
        serving.refresh_context()
    except FileNotFoundError as exc:  # the labeling app runs before the first daily run, the API waits
        progress(f"service API: {exc}")
    serving.start_refresher(CONTEXT_POLL_SECONDS)
    events = _event_log(_PROCESS)
    return create_app(lake, config, session_secret(lake.root), serving=serving, events=events)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from fbloop_assets.web.security import session_secret

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    lake = Lake(resolve_data_dir())
    where = f"for {lake.root} on http://{args.host}:{args.port}/"
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "server_header": False,
    }
    if args.workers == 1:
        app = serve_app()
        progress(f"labeling app and service API (/api/v1) {where} (Ctrl-C stops it)")
        uvicorn.run(app, **options)
        return
    # made once here, before the workers start: fbloop's schema migrated, Dagster's instance
    # storage created and the secret written by one process, not raced by several
    open_data_store(lake.root)
    session_secret(lake.root)
    with ExitStack() as stack:
        _event_log(stack)
    progress(
        f"labeling app and service API (/api/v1) {where}, {args.workers} worker processes (Ctrl-C stops them)"
    )
    uvicorn.run("fbloop_assets.cli.labels:serve_app", factory=True, workers=args.workers, **options)


def _event_log(stack: ExitStack) -> Any:
    """Dagster's event log for the audit pages; None (said once) without a Dagster instance."""
    import dagster as dg

    from fbloop_assets.daily_run import ensure_dagster_home
    from fbloop_assets.lineage import InstanceEventLog

    try:
        ensure_dagster_home()
    except RuntimeError as exc:
        progress(f"audits of weights versions are off: {exc}")
        return None
    return InstanceEventLog(stack.enter_context(dg.DagsterInstance.get()))


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("repeat it: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _accounts() -> Accounts:
    return Accounts(open_data_store(Lake(resolve_data_dir()).root))


def cmd_reviewers_add(args: argparse.Namespace) -> None:
    reviewer = _accounts().add_reviewer(args.name, args.role, _password(args))
    payload = {"reviewer": reviewer.reviewer_id, "role": reviewer.role}
    emit(payload, args.json, lambda p: f"added {p['role']} {p['reviewer']}")


def cmd_reviewers_active(args: argparse.Namespace) -> None:
    reviewer = _accounts().set_active(args.name, args.active)
    payload = {"reviewer": reviewer.reviewer_id, "role": reviewer.role, "active": reviewer.active}
    done = "activated" if reviewer.active else "deactivated (every session of theirs ended)"
    emit(payload, args.json, lambda p: f"{done} {p['role']} {p['reviewer']}")


def _render_import(r: dict[str, Any]) -> str:
    counts = (
        f"read {r['read']}, imported {r['imported']}, already imported {r['already_imported']}, "
        f"cancelled {r['cancelled']}, quarantined {r['quarantined']}"
    )
    lines = [f"{r['file']} ({r['format']}): {counts}"]
    lines += [f"  quarantined {code}: {n}" for code, n in r["quarantined_by_reason"].items()]
    lines += [f"  {s['where']}: {s['reason']}" for s in r["samples"]]
    return "\n".join(lines)


def cmd_labels_import(args: argparse.Namespace) -> None:
    lake = Lake(resolve_data_dir())
    result = import_labels(_store(lake), Path(args.file), args.format)
    emit(result.as_dict(), args.json, _render_import)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the labeling commands to the `fbloop` parser."""
    serve = sub.add_parser("serve", help="run the reviewers' labeling web app and the service API (/api/v1)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes behind the one port (1); every one reads the same database and data",
    )
    serve.set_defaults(func=cmd_serve)

    reviewers = sub.add_parser("reviewers", help="manage reviewer accounts")
    rsub = reviewers.add_subparsers(dest="reviewers_command", required=True, metavar="ACTION")
    add = rsub.add_parser("add", help="create a reviewer account")
    add.add_argument("name", help="the reviewer's sign-in name")
    add.add_argument(
        "--role",
        choices=ROLES,
        required=True,
        help="reviewer (labels), analyst (reads audit pages, cannot label) or admin (both)",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input, not a prompt"
    )
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(func=cmd_reviewers_add)
    for action, active, text in (
        ("deactivate", False, "stop a reviewer from signing in and end every session of theirs"),
        ("activate", True, "let a deactivated reviewer sign in again"),
    ):
        change = rsub.add_parser(action, help=text)
        change.add_argument("name", help="the reviewer's sign-in name")
        change.add_argument("--json", action="store_true", help="print the result as JSON")
        change.set_defaults(func=cmd_reviewers_active, active=active)

    labels = sub.add_parser("labels", help="human labels")
    lsub = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    imp = lsub.add_parser("import", help="import labels from a Label Studio JSON export or a CSV file")
    imp.add_argument("file", help="the file to import")
    imp.add_argument("--format", choices=FORMATS, required=True, help="label-studio or csv")
    imp.add_argument("--json", action="store_true", help="print the import report as JSON")
    imp.set_defaults(func=cmd_labels_import)
