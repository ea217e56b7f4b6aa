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
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
ARMS = ("on", "off")
# Data directory plus Dagster home per day and arm at 40,000 signals a day: 6.6 MB measured over 14
# days with the guards on, 7.2 MB over 30 days with them off; the margin covers the rest.
BYTES_PER_DAY_AT_40K = 7_500_000
DISK_MARGIN = 2.0
ATTACK_COLOURS = {"label-flood": "tab:red", "bot-spike": "tab:orange", "late-conversions": "tab:purple"}
ARM_STYLES = {"on": {"color": "tab:blue", "linestyle": "-"}, "off": {"color": "0.35", "linestyle": "--"}}


def _log(message: str) -> None:
    print(f"guards experiment: {message}", file=sys.stderr, flush=True)


@dataclass
class Arm:
    """One run of `fbloop demo`: its folder, process, progress and, once done, its report."""

    guards: str
    folder: Path
    process: subprocess.Popen[str] | None = None
    stdout: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    day_started: list[float] = field(default_factory=list)
    ended: float = 0.0
    data_bytes: int = 0
    peak_rss_mib: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)


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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _blocked_by(day: dict[str, Any]) -> str:
    return ", ".join(b.split(": ", 1)[0] for b in day["blocked"]) or "–"


def day_seconds(arm: Arm) -> list[float]:
    """Wall seconds of each day of the arm: serving, simulating and the daily run (the last day also
    the demo's closing truth and manifest)."""
    starts = [*arm.day_started, arm.ended]
    return [round(b - a, 2) for a, b in zip(starts, starts[1:], strict=False)]


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


def summary_rows(arms: Sequence[Arm]) -> list[dict[str, Any]]:
    """Per arm: day-1 and final true NDCG@5 and Gini, coverage, production changes, blocked days, speed."""
    rows = []
    for arm in arms:
        r = arm.report
        seconds = day_seconds(arm) or [r["seconds"] / len(r["days"])]
        first, last = r["first_day"], r["last_day"]
        # from the first attack day on (the whole run without attacks): what production served
        attacked = [i for i, d in enumerate(r["days"]) if d["attacks"]]
        since = r["days"][attacked[0] if attacked else 0 :]
        served = [d["true_ndcg_at_5"] for d in since]
        candidates = [c for d in since if (c := d.get("candidate_true_ndcg_at_5")) is not None]
        rows.append(
            {
                "guards": arm.guards,
                "attack_mean_true_ndcg_at_5": sum(served) / len(served),
                "attack_min_true_ndcg_at_5": min(served),
                "attack_worst_candidate_true_ndcg_at_5": min(candidates) if candidates else None,
                "attack_days_from": since[0]["day"],
                "first_true_ndcg_at_5": first["true_ndcg_at_5"],
                "final_true_ndcg_at_5": last["true_ndcg_at_5"],
                "first_exposure_gini": first["exposure_gini"],
                "final_exposure_gini": last["exposure_gini"],
                "first_catalog_coverage": first["catalog_coverage"],
                "final_catalog_coverage": last["catalog_coverage"],
                "production_changes": r["production_changes"],
                "final_production": r["final"]["version"],
                "blocked_days": r["blocked_days"],
                "seconds_per_day": sum(seconds) / len(seconds),
                "slowest_day_seconds": max(seconds),
                "last_day_seconds": seconds[-1],
                "peak_rss_mib": round(arm.peak_rss_mib),
                "data_mb": round(arm.data_bytes / 1e6, 1),
            }
        )
    return rows


def check_tally(arm: Arm) -> dict[str, dict[str, int]]:
    """Per blocking check: the days it blocked, and on how many a candidate existed and was truly worse.

    "Truly worse": the candidate's true NDCG@5 (against the hidden relevance) at most production's.
    """
    tally: dict[str, dict[str, int]] = {}
    for day in arm.report["days"]:
        candidate, production = day.get("candidate_true_ndcg_at_5"), day["true_ndcg_at_5"]
        for cause in day.get("blocked", []):
            counts = tally.setdefault(cause.split(":")[0], {"days": 0, "with_candidate": 0, "truly_worse": 0})
            counts["days"] += 1
            if candidate is not None:
                counts["with_candidate"] += 1
                counts["truly_worse"] += int(candidate <= production)
    return tally


def blocked_checks(arms: Sequence[Arm]) -> list[str]:
    """Markdown: which check blocked how many days, and whether the candidates it stopped were worse."""
    lines = [
        "Blocked days by check, and how many of the candidates they stopped were truly worse than production"
        " (true NDCG@5 at most production's):",
        "",
        "| guards | check | days | with a candidate | truly worse |",
        "|---|---|---|---|---|",
    ]
    for arm in arms:
        for check, n in sorted(check_tally(arm).items(), key=lambda kv: -kv[1]["days"]):
            lines.append(
                f"| {arm.guards} | `{check}` | {n['days']} | {n['with_candidate']} | {n['truly_worse']} |"
            )
    return lines


def render_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as text lines, one per arm."""
    return "\n".join(
        f"guards {r['guards']:<3}: true NDCG@5 {r['first_true_ndcg_at_5']:.4f}"
        f" -> {r['final_true_ndcg_at_5']:.4f},"
        f" exposure Gini {r['first_exposure_gini']:.4f} -> {r['final_exposure_gini']:.4f},"
        f" coverage {r['first_catalog_coverage']:.4f} -> {r['final_catalog_coverage']:.4f};"
        f" from {r['attack_days_from']} on: production's true NDCG@5 mean"
        f" {r['attack_mean_true_ndcg_at_5']:.4f}, lowest {r['attack_min_true_ndcg_at_5']:.4f},"
        f" worst candidate {_fmt(r['attack_worst_candidate_true_ndcg_at_5'], 4)};"
        f" production changed {r['production_changes']} time(s) (ends at {r['final_production']}),"
        f" blocked on {r['blocked_days']} day(s); {r['seconds_per_day']:.1f} s a day"
        f" (slowest {r['slowest_day_seconds']:.1f} s, last {r['last_day_seconds']:.1f} s),"
        f" peak {r['peak_rss_mib']:,} MiB, {r['data_mb']:,} MB on disk"
        for r in rows
    )


def markdown(
    command: str, args: argparse.Namespace, arms: Sequence[Arm], rows: Sequence[dict[str, Any]]
) -> str:
    """The report: the command, a summary table, the figure and a table per day."""
    lines = [
        "# The loop under attack: guards on and off",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{args.days} days from {args.start}, seed {args.seed}, {args.signals_per_day:,} outcome signals"
        " a day;"
        f" attacks: {', '.join(args.attack) or 'none'} on their standard days (see"
        " [the simulator](simulator.md#attacks)). The same world twice: `fbloop demo --guards on` and"
        " `--guards off`. True NDCG@5 is production's ranking against the hidden relevance; exposure Gini"
        " and catalog coverage are those of the slates production served that day over the day's whole"
        " creator snapshot.",
        "",
        "| guards | true NDCG@5 day 1 | final | exposure Gini day 1 | final | coverage day 1 | final"
        " | production changes | blocked days | s / day | peak MiB | MB on disk |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['guards']} | {_fmt(r['first_true_ndcg_at_5'], 4)} | {_fmt(r['final_true_ndcg_at_5'], 4)}"
            f" | {_fmt(r['first_exposure_gini'], 4)} | {_fmt(r['final_exposure_gini'], 4)}"
            f" | {_fmt(r['first_catalog_coverage'], 4)} | {_fmt(r['final_catalog_coverage'], 4)}"
            f" | {r['production_changes']} | {r['blocked_days']} | {r['seconds_per_day']:.1f}"
            f" | {r['peak_rss_mib']:,} | {r['data_mb']:,} |"
        )
    lines += [
        "",
        f"From the first attack day ({rows[0]['attack_days_from']}) on, the true NDCG@5 of what production"
        " served, and of the worst candidate the loop fitted:",
        "",
        "| guards | mean | lowest | worst candidate |",
        "|---|---|---|---|",
        *(
            f"| {r['guards']} | {_fmt(r['attack_mean_true_ndcg_at_5'], 4)}"
            f" | {_fmt(r['attack_min_true_ndcg_at_5'], 4)}"
            f" | {_fmt(r['attack_worst_candidate_true_ndcg_at_5'], 4)} |"
            for r in rows
        ),
    ]
    lines += ["", *blocked_checks(arms)]
    lines += ["", "![the loop under attack, guards on and off](guards_experiment.png)", "", "## Per day", ""]
    header = ["day", "attacks"]
    for arm in arms:
        g = arm.guards
        header += [
            f"{g}: true NDCG@5",
            f"{g}: Gini",
            f"{g}: coverage",
            f"{g}: production",
            f"{g}: blocked by",
        ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, day in enumerate(arms[0].report["days"]):
        cells = [day["day"], ", ".join(day["attacks"]) or "–"]
        for arm in arms:
            d = arm.report["days"][i]
            production = d["production"] + (" (new)" if d["production_changed"] else "")
            cells += [
                _fmt(d["true_ndcg_at_5"]),
                _fmt(d["exposure_gini"]),
                _fmt(d["catalog_coverage"]),
                production,
                _blocked_by(d),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    causes = [
        f"- {d['day']}, guards {arm.guards}: {'; '.join(d['blocked'])}"
        for arm in arms
        for d in arm.report["days"]
        if d["blocked"]
    ]
    if causes:
        lines += ["", "## Why the blocked days were blocked", "", *causes]
    return "\n".join(lines) + "\n"


def plot(arms: Sequence[Arm], target: Path) -> None:
    """A panel per measure over the days, both arms, attack days shaded, blocked days marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    from fbloop_assets.lib.common.lake import atomic_path

    days = arms[0].report["days"]
    x = list(range(1, len(days) + 1))
    panels = (
        ("true_ndcg_at_5", "true NDCG@5 of production (thin: of the day's candidate)"),
        ("exposure_gini", "exposure Gini of production's slates"),
        ("catalog_coverage", "catalog coverage of production's slates"),
        ("production_changes", "production version changes (cumulative)"),
    )
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 11), sharex=True)
    for ax, (key, title) in zip(axes, panels, strict=True):
        for i, day in enumerate(days, start=1):
            for attack in day["attacks"]:
                # late conversions last to the end of the run: a bar along the bottom, so that the
                # short attacks' bands stay readable
                band = (
                    {"ymin": 0.0, "ymax": 0.05, "alpha": 0.5}
                    if attack == "late-conversions"
                    else {"alpha": 0.18}
                )
                ax.axvspan(i - 0.5, i + 0.5, color=ATTACK_COLOURS[attack], linewidth=0, **band)
        for arm in arms:
            values = [d[key] for d in arm.report["days"]]
            drawn = "steps-mid" if key == "production_changes" else "default"
            ax.plot(x, values, drawstyle=drawn, label=f"guards {arm.guards}", **ARM_STYLES[arm.guards])
            if key == "true_ndcg_at_5":
                fitted = [d.get("candidate_true_ndcg_at_5") for d in arm.report["days"]]
                ax.plot(
                    x,
                    [math.nan if v is None else v for v in fitted],
                    marker=".",
                    linewidth=0.8,
                    alpha=0.6,
                    label=f"candidate (guards {arm.guards})",
                    **ARM_STYLES[arm.guards],
                )
            blocked = [
                (i, v)
                for i, (d, v) in enumerate(zip(arm.report["days"], values, strict=True), 1)
                if d["blocked"]
            ]
            if blocked:
                bx, by = zip(*blocked, strict=True)
                ax.scatter(
                    bx, by, marker="x", color="tab:red", zorder=3, label=f"blocked (guards {arm.guards})"
                )
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[-1].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    attacks_seen = sorted({a for d in days for a in d["attacks"]}, key=list(ATTACK_COLOURS).index)
    handles, labels = axes[0].get_legend_handles_labels()
    handles += [Patch(color=ATTACK_COLOURS[a], alpha=0.35) for a in attacks_seen]
    labels += attacks_seen
    figure.legend(handles, labels, fontsize=9, ncol=min(len(labels), 5), loc="upper center", frameon=False)
    axes[-1].set_xlabel(f"day (from {days[0]['day']})")
    figure.tight_layout(rect=(0.0, 0.0, 1.0, 0.95))
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
        tmp.chmod(0o644)
    plt.close(figure)


def write_text(text: str, target: Path) -> None:
    """Write ``text`` to ``target`` atomically, readable by all (it is documentation)."""
    from fbloop_assets.lib.common.lake import atomic_path

    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)


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
