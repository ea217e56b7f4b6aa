"""Server-rendered charts of the loop's effect (`lib.audit.effect.loop_effect`), as SVG.

matplotlib's object API (a `Figure` per request, no pyplot state, so threads do not share a
figure) draws each chart into an SVG string; the page links them as
images from this server (no script, no CDN: the app works offline). Colours are the design tokens
of ``static/fbloop.css``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PRIMARY, MUTED, USEFUL, NOT_USEFUL, BORDER = "#1f5fbf", "#5b6576", "#1d7a46", "#b3261e", "#d5dae2"
PALETTE = [PRIMARY, "#e08a00", USEFUL, NOT_USEFUL, "#7a4cc2", MUTED, "#0f8b8d", "#c2185b"]


def _days(effect: dict[str, Any]) -> list[date]:
    return [date.fromisoformat(d["day"]) for d in effect["days"]]


def _span_days(effect: dict[str, Any], ax: Axes) -> None:
    days = _days(effect)
    if days:
        ax.set_xlim(mdates.date2num(days[0]) - 0.6, mdates.date2num(days[-1]) + 0.6)
        step = max(1, len(days) // 10)
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=step))


def _style(ax: Axes, title: str) -> None:
    ax.set_title(title, loc="left", fontsize=10, color="#1c2330")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(BORDER)
    ax.tick_params(colors=MUTED, labelsize=8)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.grid(axis="y", color=BORDER, linewidth=0.5)


def timeline(effect: dict[str, Any], ax: Axes) -> None:
    """Which version held production (and canary) on each day: one bar per span."""
    days = _days(effect)
    end = days[-1] + timedelta(days=1) if days else date.today()
    colours: dict[str, str] = {}
    for row, alias in enumerate(("production", "canary")):
        spans = effect[alias] or []
        if alias == "production" and (not spans or (days and spans[0]["since"] > days[0].isoformat())):
            first = days[0] if days else end
            spans = [
                {"version": "w0", "since": first.isoformat(), "until": spans[0]["since"] if spans else None}
            ]
            spans += effect[alias]
        for span in spans:
            start = date.fromisoformat(span["since"])
            stop = date.fromisoformat(span["until"]) if span["until"] else end
            colour = colours.setdefault(span["version"], PALETTE[len(colours) % len(PALETTE)])
            ax.barh(row, (stop - start).days, left=mdates.date2num(start), height=0.5, color=colour)
            ax.text(
                mdates.date2num(start) + 0.1, row, span["version"], va="center", fontsize=7, color="white"
            )
    ax.set_yticks([0, 1], ["production", "canary"])
    ax.invert_yaxis()
    _style(ax, "Version in force (alias history)")


def offline(effect: dict[str, Any], ax: Axes) -> None:
    """The relative change in SNIPS conversion yield, candidate vs production, with its interval."""
    rows = [(date.fromisoformat(d["day"]), d["offline"]) for d in effect["days"] if d["offline"]]
    rows = [(day, o["snips_relative"]) for day, o in rows if o.get("snips_relative")]
    for day, rel in rows:
        lo, hi = rel["lower"] * 100, (rel["upper"] if rel["upper"] is not None else rel["estimate"]) * 100
        x = mdates.date2num(day)
        ax.plot([x, x], [lo, hi], color=MUTED, linewidth=1.5)
        ax.plot(x, rel["estimate"] * 100, "o", color=PRIMARY, markersize=5)
    ax.axhline(0, color=BORDER, linewidth=1)
    ax.set_ylabel("% vs production", fontsize=8, color=MUTED)
    _span_days(effect, ax)
    _style(ax, "Offline: SNIPS conversions per 1k impressions, candidate vs production (90% interval)")


def canary(effect: dict[str, Any], ax: Axes) -> None:
    """The live canary's lift per metric with its bootstrap interval, on the days it was reviewed."""
    reviewed = [(date.fromisoformat(d["day"]), d["canary"]) for d in effect["days"] if d["canary"]]
    metrics = sorted({m for _, c in reviewed for m in (c["lift"] or {})})
    for i, metric in enumerate(metrics):
        colour = PALETTE[i % len(PALETTE)]
        for day, review in reviewed:
            lift, interval = (review["lift"] or {}).get(metric), (review["interval"] or {}).get(metric)
            shifted = mdates.date2num(day) + (i - (len(metrics) - 1) / 2) * 0.15
            if interval:
                ax.plot([shifted, shifted], [interval[0] * 100, interval[1] * 100], color=colour, alpha=0.6)
            if lift is not None:
                ax.plot(shifted, lift * 100, "o", color=colour, markersize=5, label=metric)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, "no canary reviewed yet", transform=ax.transAxes, ha="center", color=MUTED)
    ax.axhline(0, color=BORDER, linewidth=1)
    ax.set_ylabel("lift %", fontsize=8, color=MUTED)
    _span_days(effect, ax)
    _style(ax, "Live canary vs production: lift per metric (bootstrap interval)")


def ingestion(effect: dict[str, Any], ax: Axes) -> None:
    """Rows read per day (all sources), quarantined, and excluded for missing consent."""
    days = _days(effect)
    read = [sum(d["ingestion"]["read"].values()) for d in effect["days"]]
    quarantined = [sum(d["ingestion"]["quarantined"].values()) for d in effect["days"]]
    consent = [d["ingestion"]["consent_excluded"] or 0 for d in effect["days"]]
    x = mdates.date2num(days)
    ax.bar(x - 0.27, read, width=0.27, color=PRIMARY, label="read")
    ax.bar(x, quarantined, width=0.27, color=NOT_USEFUL, label="quarantined")
    ax.bar(x + 0.27, consent, width=0.27, color="#e08a00", label="excluded: no consent")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(0, max([*read, 10]) * 8)  # headroom above the bars for the legend
    ax.legend(fontsize=7, frameon=False, ncols=3, loc="upper left")
    _span_days(effect, ax)
    _style(ax, "Ingestion per day (rows; log scale)")


CHARTS: dict[str, Callable[[dict[str, Any], Axes], None]] = {
    "timeline": timeline,
    "offline": offline,
    "canary": canary,
    "ingestion": ingestion,
}


def render_svg(name: str, effect: dict[str, Any]) -> str:
    """Chart ``name`` (a key of `CHARTS`) of ``effect`` as an SVG document."""
    fig = Figure(figsize=(8, 2.0 if name == "timeline" else 2.8), dpi=100)
    CHARTS[name](effect, fig.subplots())
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()
