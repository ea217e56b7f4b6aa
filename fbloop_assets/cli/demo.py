"""The synthetic world's commands: simulate (write a world into the landing zone) and demo (the
closed loop on it). The only commands that import the simulator."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from typing import Any

from fbloop_assets.cli.common import emit as _emit
from fbloop_assets.cli.common import iso_date as _iso_date
from fbloop_assets.cli.common import positive as _positive
from fbloop_assets.cli.common import progress as _progress
from fbloop_assets.cli.loop import preflight
from fbloop_assets.lib.common.lake import resolve_data_dir


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
    from fbloop_assets.simulate import simulate

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


def cmd_demo(args: argparse.Namespace) -> None:
    import dagster as dg

    from fbloop_assets.daily_run import ensure_dagster_home
    from fbloop_assets.demo import clear_state, render, run_demo
    from fbloop_assets.lib.common.config import load_config
    from fbloop_assets.simulate.attacks import parse_attacks

    attacks = parse_attacks(args.attack)  # an unknown name stops here, before any state changes
    guards = None if args.guards is None else args.guards == "on"
    preflight()
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
            guards=guards,
            attacks=attacks,
        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    _progress(f"done in {report['seconds']} s")
    # The day lines went to stderr as each day finished; where stderr and stdout are the same
    # terminal, printing them again would show every day twice.
    shown = sys.stderr.isatty() and sys.stdout.isatty()
    _emit(report, args.json, lambda r: render(r, with_days=not shown))


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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `simulate` and `demo` to the `fbloop` parser."""
    sim = sub.add_parser("simulate", help="write a synthetic influencer world into the landing zone")
    sim.add_argument("--days", type=_positive, required=True, help="number of days to simulate")
    sim.add_argument("--seed", type=int, required=True, help="random seed (same seed, same files)")
    _world_options(sim, 20_000)
    sim.add_argument("--json", action="store_true", help="print the simulation manifest as JSON")
    sim.set_defaults(func=cmd_simulate)

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
    demo.add_argument(
        "--guards",
        choices=("on", "off"),
        default=None,
        help="run the guards (on) or only report them (off); default: guards.enabled of the config",
    )
    demo.add_argument(
        "--attack",
        default="",
        metavar="NAMES",
        help="attacks on their standard days, comma-separated: label-flood, bot-spike, late-conversions",
    )
    demo.add_argument("--json", action="store_true", help="print the per-day reports as JSON")
    demo.set_defaults(func=cmd_demo)
