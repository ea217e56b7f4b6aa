"""The `fbloop` command line: a thin layer over `lib/` and the Dagster job.

Every command that reports takes ``--json`` and then prints exactly one JSON document on stdout;
progress goes to stderr. Errors are one line on stderr and a non-zero exit (set
``FBLOOP_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from fbloop_assets.lib.lake import resolve_data_dir


def _progress(message: str) -> None:
    print(f"fbloop: {message}", file=sys.stderr, flush=True)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _emit(payload: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, sort_keys=True, default=str))
    else:
        print(render(payload))


def _render_simulation(manifest: dict[str, Any]) -> str:
    lines = [f"simulated {manifest['n_days']} day(s) from {manifest['start']} with seed {manifest['seed']}"]
    for day, sources in manifest["days"].items():
        parts = [f"{s} {sources[s]['rows']:,}" for s in ("recommendations", "outcome_signals", "labels")]
        bad = sum(
            sum(sources[s]["bad"].values())
            for s in sources
            if isinstance(sources[s], dict) and "bad" in sources[s]
        )
        lines.append(f"  {day}: {', '.join(parts)} rows ({bad} bad rows injected)")
    pending = ", ".join(f"{s} {n:,}" for s, n in manifest["pending_after_range"].items()) or "none"
    lines.append(f"  still to arrive after the last day (not written): {pending}")
    lines.append(
        f"landing zone: {manifest['data_dir']}/landing; truth and manifest: {manifest['data_dir']}/simulation"
    )
    return "\n".join(lines)


def _simulate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the simulator with the command's world options; the manifest, with the data directory."""
    from fbloop_assets.lib.simulate import simulate

    data_dir = resolve_data_dir()
    manifest = simulate(
        data_dir,
        days=args.days,
        seed=args.seed,
        start=args.start,
        signals_per_day=args.signals_per_day,
        progress=_progress,
    )
    return manifest | {"data_dir": str(data_dir)}


def cmd_simulate(args: argparse.Namespace) -> None:
    _emit(_simulate(args), args.json, _render_simulation)


def _render_day(summary: dict[str, Any]) -> str:
    q = summary["quarantined"]
    f = summary["feedback"]
    reasons = ", ".join(f"{k} {v}" for k, v in q.items() if k != "total") or "none"
    read = sum(summary["rows_read"].values())
    return "\n".join(
        [
            f"{summary['date']}: read {read:,} rows "
            + "("
            + ", ".join(f"{k} {v:,}" for k, v in summary["rows_read"].items())
            + ")",
            f"  quarantined {q.get('total', 0):,}: {reasons}",
            f"  normalized {f['normalized']:,} feedback rows;"
            f" excluded for missing consent {f['excluded_no_consent']:,};"
            f" incomplete (attribution window open) {f['incomplete']:,}",
            "  checks: " + (", ".join(f"{k} {v}" for k, v in summary["checks"].items()) or "none"),
        ]
    )


def _preflight() -> None:
    """Refuse a broken configuration or key before a run starts, not in the middle of it."""
    from fbloop_assets.lib.config import load_config
    from fbloop_assets.lib.privacy import load_key

    load_config()
    load_key(resolve_data_dir())


def cmd_run(args: argparse.Namespace) -> None:
    from fbloop_assets.daily_run import ensure_dagster_home, run_day

    _preflight()
    home = ensure_dagster_home()
    _progress(f"materializing the daily loop for {args.date} (instance {home})")
    started = time.perf_counter()
    summary = run_day(args.date).as_dict()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _progress(f"done in {summary['seconds']} s")
    _emit(summary, args.json, _render_day)


def cmd_demo(args: argparse.Namespace) -> None:
    import dagster as dg

    from fbloop_assets.daily_run import ensure_dagster_home
    from fbloop_assets.demo import clear_state, render, run_demo
    from fbloop_assets.lib.config import load_config

    _preflight()
    home = ensure_dagster_home()
    data_dir = resolve_data_dir()
    if args.fresh:
        clear_state(data_dir)
    _progress(f"closed loop over {args.days} day(s), seed {args.seed}: data {data_dir}, instance {home}")
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        report = run_demo(
            data_dir,
            load_config(),
            days=args.days,
            seed=args.seed,
            start=args.start,
            signals_per_day=args.signals_per_day,
            instance=instance,
            progress=_progress,
        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    _progress(f"done in {report['seconds']} s")
    _emit(report, args.json, render)


def _world_options(parser: argparse.ArgumentParser, signals_per_day: int) -> None:
    """The flags that shape the simulated world, shared by `simulate` and `demo`."""
    parser.add_argument(
        "--start", type=_iso_date, default=date(2026, 1, 1), help="first day, YYYY-MM-DD (2026-01-01)"
    )
    parser.add_argument(
        "--signals-per-day",
        type=_positive,
        default=signals_per_day,
        help=f"outcome signals per day ({signals_per_day})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fbloop", description="The feedback loop of an influencer recommender."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="write a synthetic influencer world into the landing zone")
    sim.add_argument("--days", type=_positive, required=True, help="number of days to simulate")
    sim.add_argument("--seed", type=int, required=True, help="random seed (same seed, same files)")
    _world_options(sim, 20_000)
    sim.add_argument("--json", action="store_true", help="print the simulation manifest as JSON")
    sim.set_defaults(func=cmd_simulate)

    run = sub.add_parser(
        "run", help="materialize the daily loop for one partition on the configured instance"
    )
    run.add_argument("--date", type=_iso_date, required=True, help="the UTC day to run, YYYY-MM-DD")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo", help="the closed loop: serve with production weights, simulate the world, run the daily loop"
    )
    demo.add_argument("--days", type=_positive, default=14, help="number of days (14)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (7)")
    _world_options(demo, 40_000)
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="first remove an earlier demo's data (landing, warehouse, weights, ...)",
    )
    demo.add_argument("--json", action="store_true", help="print the per-day reports as JSON")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("fbloop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the contract: one line, no traceback (unless debugging)
        if os.environ.get("FBLOOP_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fbloop: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
