"""Experiment: the closed loop under attack, with the guards on and with them off.

Runs `fbloop demo` twice on the same simulated world (same seed, same attacks on the same days),
once with ``--guards on`` and once with ``--guards off``, each in a fresh process with its own
temporary data directory and Dagster home, both from one copy of the package taken at the start
(edits to the working tree meanwhile do not split the arms), and compares what production did
day by day: the true NDCG@5 against the hidden relevance, the exposure Gini and catalog coverage
of production's slates, the production version changes and which guard blocked a day.

    python benchmarks/guards_experiment.py --days 60 --seed 7 [--attack label-flood,bot-spike]
        [--signals-per-day 40000] [--out docs] [--parallel] [--keep]
    python benchmarks/guards_experiment.py --replot WORK    # redraw from a run kept with --keep

``--parallel`` runs the arms side by side; on the 2-core reference machine that is slower than one
after the other.

Writes ``<out>/guards_experiment.png`` (a panel per measure, both arms, attack days shaded) and
``<out>/guards_experiment.md`` (the command, a summary and a table per day), atomically, and
prints the summary. Progress goes to stderr. Before it starts it checks that the temporary folder
has room for both arms (about 7.5 MB per day and arm at 40,000 signals a day, measured); while the
arms run it stops any arm whose resident memory passes ``--max-rss-gib``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guards_report import (
    Arm,
    day_seconds,
    markdown,
    plot,
    render_summary,
    summary_rows,
    write_text,
)

PROJECT = Path(__file__).resolve().parents[1]
ARMS = ("on", "off")
# Data directory plus Dagster home per day and arm at 40,000 signals a day: 6.6 MB measured over 14
# days with the guards on, 7.2 MB over 30 days with them off; the margin covers the rest.
BYTES_PER_DAY_AT_40K = 7_500_000
DISK_MARGIN = 2.0


def _log(message: str) -> None:
    print(f"guards experiment: {message}", file=sys.stderr, flush=True)


def snapshot(work: Path) -> Path:
    """Copy the package and its configuration into ``work``: both arms run the same code, however
    the working tree changes while they run (a run started from that folder imports this copy)."""
    code = work / "code"
    shutil.copytree(
        PROJECT / "fbloop_assets", code / "fbloop_assets", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("fbloop.toml", "dagster.yaml"):
        shutil.copy(PROJECT / name, code / name)
    return code


def _environment(arm: Arm, code: Path) -> dict[str, str]:
    home = arm.folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(code / "dagster.yaml", home / "dagster.yaml")
    env = os.environ | {"FBLOOP_DATA_DIR": str(arm.folder / "data"), "DAGSTER_HOME": str(home)}
    env.pop("FBLOOP_DATABASE_URL", None)  # each arm keeps its registry in its own data directory
    return env


def _demo_command(args: argparse.Namespace, guards: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fbloop_assets.cli",
        "demo",
        "--days",
        str(args.days),
        "--seed",
        str(args.seed),
        "--start",
        args.start,
        "--signals-per-day",
        str(args.signals_per_day),
        "--guards",
        guards,
        "--attack",
        ",".join(args.attack),
        "--json",
    ]


def _relay(arm: Arm) -> None:
    """Pass the arm's progress on to stderr, prefixed with the arm; note when each day starts."""
    assert arm.process is not None and arm.process.stderr is not None
    for line in arm.process.stderr:
        line = line.rstrip("\n")
        if ": day " in line and "running the loop" in line:
            arm.day_started.append(time.perf_counter())
        arm.stderr_tail = [*arm.stderr_tail[-40:], line]
        print(f"[guards {arm.guards}] {line}", file=sys.stderr, flush=True)


def _collect(arm: Arm) -> None:
    assert arm.process is not None and arm.process.stdout is not None
    arm.stdout.append(arm.process.stdout.read())


def _rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_arms(args: argparse.Namespace, arms: Sequence[Arm], code: Path) -> None:
    """Run the arms (one after the other, or side by side with ``--parallel``) from the code in
    ``code`` and read their reports."""
    try:
        for batch in [list(arms)] if args.parallel else [[a] for a in arms]:
            _run_batch(args, batch, code)
    finally:
        for arm in arms:  # after a failure, no arm is left running
            if arm.process is not None and arm.process.poll() is None:
                arm.process.kill()
                arm.process.wait()


def _run_batch(args: argparse.Namespace, batch: list[Arm], code: Path) -> None:
    limit_mib = args.max_rss_gib * 1024
    threads = []
    for arm in batch:
        _log(f"guards {arm.guards}: fbloop demo in {arm.folder}")
        arm.process = subprocess.Popen(
            _demo_command(args, arm.guards),
            cwd=code,
            env=_environment(arm, code),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threads += [threading.Thread(target=f, args=(arm,), daemon=True) for f in (_relay, _collect)]
    for thread in threads:
        thread.start()
    while any(a.process is not None and a.process.poll() is None for a in batch):
        for arm in batch:
            assert arm.process is not None
            if arm.process.poll() is not None:
                arm.ended = arm.ended or time.perf_counter()
                continue
            arm.peak_rss_mib = max(arm.peak_rss_mib, _rss_mib(arm.process.pid))
            if arm.peak_rss_mib > limit_mib:
                raise RuntimeError(f"guards {arm.guards}: resident memory passed {args.max_rss_gib} GiB")
        time.sleep(1.0)
    for thread in threads:
        thread.join()
    for arm in batch:
        assert arm.process is not None
        if arm.process.returncode != 0:
            tail = "\n".join(arm.stderr_tail[-10:])
            raise RuntimeError(f"guards {arm.guards}: fbloop demo exited {arm.process.returncode}:\n{tail}")
        arm.report = json.loads("".join(arm.stdout))
        arm.ended = arm.ended or time.perf_counter()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_disk(work: Path, days: int, signals_per_day: int) -> int:
    """Refuse to start when the work folder's file system lacks room for both arms; the estimate."""
    needed = int(len(ARMS) * days * BYTES_PER_DAY_AT_40K * max(signals_per_day / 40_000, 0.25) * DISK_MARGIN)
    free = shutil.disk_usage(work).free
    if free < needed:
        raise RuntimeError(
            f"{work} has {free / 1e9:.1f} GB free; the two arms need about {needed / 1e9:.1f} GB"
        )
    return needed


def save(arm: Arm, command: str) -> None:
    """Keep the arm's report and measurements in its folder, for ``--replot``."""
    measured = {"command": command, "day_seconds": day_seconds(arm), "peak_rss_mib": arm.peak_rss_mib}
    payload = arm.report | {"experiment": measured | {"data_bytes": arm.data_bytes}}
    write_text(json.dumps(payload, indent=2, default=str), arm.folder / "report.json")


def load(folder: Path, guards: str) -> tuple[Arm, str]:
    """An arm saved by ``save``, with the command that ran it."""
    report = json.loads((folder / f"guards-{guards}" / "report.json").read_text(encoding="utf-8"))
    measured = report.pop("experiment")
    arm = Arm(guards, folder / f"guards-{guards}", report=report, peak_rss_mib=measured["peak_rss_mib"])
    arm.data_bytes = measured["data_bytes"]
    arm.day_started = [0.0]
    for seconds in measured["day_seconds"]:
        arm.day_started.append(arm.day_started[-1] + seconds)
    arm.ended = arm.day_started.pop()
    return arm, measured["command"]


def _attacks(text: str) -> tuple[str, ...]:
    from fbloop_assets.simulate.attacks import parse_attacks

    try:
        return parse_attacks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Run both arms (or read kept ones), write the figure and the Markdown report, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60, help="days of the closed loop (60)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated world (7)")
    parser.add_argument("--start", default="2026-01-01", help="first day (2026-01-01)")
    parser.add_argument("--signals-per-day", type=int, default=40_000, help="outcome signals a day (40000)")
    parser.add_argument(
        "--attack",
        type=_attacks,
        default=("label-flood", "bot-spike", "late-conversions"),
        help="comma-separated attacks (all three); '' for none",
    )
    parser.add_argument(
        "--out", type=Path, default=PROJECT / "docs", help="where the figure and report go (docs)"
    )
    parser.add_argument("--parallel", action="store_true", help="run both arms at once (twice the memory)")
    parser.add_argument("--max-rss-gib", type=float, default=8.0, help="stop an arm above this memory (8)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder: the arms' data and report.json"
    )
    parser.add_argument(
        "--replot", type=Path, metavar="WORK", help="no run: redraw from a work folder kept with --keep"
    )
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2")
    started = time.perf_counter()
    if args.replot:
        loaded = [load(args.replot, g) for g in ARMS]
        arms, command = [a for a, _ in loaded], loaded[0][1]
        report_args = argparse.Namespace(**vars(args) | _run_args(arms[0].report))
    else:
        command = shlex.join(
            ["python", "benchmarks/guards_experiment.py", *(sys.argv[1:] if argv is None else argv)]
        )
        arms = experiment(args, command)
        report_args = args
    rows = summary_rows(arms)
    plot(arms, args.out / "guards_experiment.png")
    write_text(markdown(command, report_args, arms, rows), args.out / "guards_experiment.md")
    print(render_summary(rows))
    print(
        f"wrote {args.out / 'guards_experiment.png'} and {args.out / 'guards_experiment.md'}"
        f" in {time.perf_counter() - started:.0f} s"
    )
    return 0


def _run_args(report: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters, as the kept report of an arm states them."""
    days = report["days"]
    return {
        "days": len(days),
        "start": days[0]["day"],
        "seed": report["seed"],
        "signals_per_day": report["signals_per_day"],
        "attack": tuple(report["attacks"]),
    }


def experiment(args: argparse.Namespace, command: str) -> list[Arm]:
    """Both arms in a fresh work folder, removed afterwards unless ``--keep``."""
    work = Path(tempfile.mkdtemp(prefix="fbloop-guards-"))
    try:
        needed = check_disk(work, args.days, args.signals_per_day)
        _log(
            f"{args.days} day(s), seed {args.seed}, attacks {', '.join(args.attack) or 'none'};"
            f" work folder {work} (needs about {needed / 1e9:.1f} GB)"
        )
        arms = [Arm(g, work / f"guards-{g}") for g in ARMS]
        run_arms(args, arms, snapshot(work))
        for arm in arms:
            arm.data_bytes = _folder_bytes(arm.folder)
            if args.keep:
                save(arm, command)
        return arms
    finally:
        if args.keep:
            _log(f"kept {work} (redraw with --replot {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
