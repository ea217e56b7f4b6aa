"""The guards experiment's report: the arms' runs, their summary, the Markdown page and the figure.

`guards_experiment` runs the arms (`Arm`, one `fbloop demo` each) and hands them here: `summary_rows`
and `render_summary` for the terminal, `markdown` for ``guards_experiment.md``, `plot` for the PNG,
all written atomically (`write_text`).
"""

from __future__ import annotations

import argparse
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ATTACK_COLOURS = {"label-flood": "tab:red", "bot-spike": "tab:orange", "late-conversions": "tab:purple"}
ARM_STYLES = {"on": {"color": "tab:blue", "linestyle": "-"}, "off": {"color": "0.35", "linestyle": "--"}}


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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _blocked_by(day: dict[str, Any]) -> str:
    return ", ".join(b.split(": ", 1)[0] for b in day["blocked"]) or "–"


def day_seconds(arm: Arm) -> list[float]:
    """Wall seconds of each day of the arm: serving, simulating and the daily run (the last day also
    the demo's closing truth and manifest)."""
    starts = [*arm.day_started, arm.ended]
    return [round(b - a, 2) for a, b in zip(starts, starts[1:], strict=False)]


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
                # the best linear weights on φ fitted to the hidden truth (older reports lack it)
                "ceiling_true_ndcg_at_5": r.get("ceiling", {}).get("true_ndcg_at_5"),
                "day_14_share_of_ceiling": _share(r, 13),
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


def _share(report: dict[str, Any], day: int) -> float | None:
    """Production's true NDCG@5 on 0-based ``day`` (the last when shorter) over the ceiling's."""
    ceiling = report.get("ceiling", {}).get("true_ndcg_at_5")
    if not ceiling or not report["days"]:
        return None
    return report["days"][min(day, len(report["days"]) - 1)]["true_ndcg_at_5"] / ceiling


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


def _titled_table(
    intro: str, headers: Sequence[str], rows: Sequence[Sequence[object]], none: str
) -> list[str]:
    """Markdown: ``intro`` and a table of ``rows``, or the sentence ``none`` when there are none."""
    if not rows:
        return [none]
    lines = [intro, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def blocked_checks(arms: Sequence[Arm]) -> list[str]:
    """Markdown: which check blocked how many days, and whether the candidates it stopped were worse."""
    rows = [
        (arm.guards, f"`{check}`", n["days"], n["with_candidate"], n["truly_worse"])
        for arm in arms
        for check, n in sorted(check_tally(arm).items(), key=lambda kv: -kv[1]["days"])
    ]
    return _titled_table(
        "Blocked days by check, and how many of the candidates they stopped were truly worse than production"
        " (true NDCG@5 at most production's):",
        ("guards", "check", "days", "with a candidate", "truly worse"),
        rows,
        "No day was blocked in either arm.",
    )


def held_back_rows(arms: Sequence[Arm]) -> list[str]:
    """Markdown: the rows each guard held back (left out of datasets), and on which days."""
    import polars as pl

    rows = []
    for arm in arms:
        files = sorted((arm.folder / "data" / "warehouse" / "held_back_feedback").glob("*.parquet"))
        if not files:
            continue
        held = pl.read_parquet(files)
        attacked = {d["day"] for d in arm.report.get("days", []) if d["attacks"]}
        for (guard,), part in sorted(held.group_by("guard"), key=lambda g: str(g[0])):
            days = {str(d) for d in part["partition_date"].unique()}
            rows.append((arm.guards, f"`{guard}`", len(days), f"{part.height:,}", len(days - attacked)))
    return _titled_table(
        "Rows the guards held back (kept, flagged, and left out of every dataset until an analyst"
        " releases them), by guard:",
        ("guards", "guard", "days", "rows", "days without an attack"),
        rows,
        "No row was held back in either arm.",
    )


def render_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as text lines, one per arm."""
    return "\n".join(
        f"guards {r['guards']:<3}: true NDCG@5 {r['first_true_ndcg_at_5']:.4f}"
        f" -> {r['final_true_ndcg_at_5']:.4f} (ceiling {_fmt(r['ceiling_true_ndcg_at_5'], 4)},"
        f" day 14 at {_fmt(r['day_14_share_of_ceiling'], 3)} of it),"
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


def _summary_line(r: dict[str, Any]) -> str:
    """One arm's row of the Markdown summary table."""
    return (
        f"| {r['guards']} | {_fmt(r['first_true_ndcg_at_5'], 4)} | {_fmt(r['final_true_ndcg_at_5'], 4)}"
        f" | {_fmt(r['ceiling_true_ndcg_at_5'], 4)} | {_fmt(r['day_14_share_of_ceiling'], 3)}"
        f" | {_fmt(r['first_exposure_gini'], 4)} | {_fmt(r['final_exposure_gini'], 4)}"
        f" | {_fmt(r['first_catalog_coverage'], 4)} | {_fmt(r['final_catalog_coverage'], 4)}"
        f" | {r['production_changes']} | {r['blocked_days']} | {r['seconds_per_day']:.1f}"
        f" | {r['peak_rss_mib']:,} | {r['data_mb']:,} |"
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
        "| guards | true NDCG@5 day 1 | final | ceiling | day 14 / ceiling | exposure Gini day 1 | final"
        " | coverage day 1 | final | production changes | blocked days | s / day | peak MiB | MB on disk |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_summary_line(r) for r in rows]
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
    lines += ["", *blocked_checks(arms), "", *held_back_rows(arms)]
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
