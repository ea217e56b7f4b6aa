"""The one-paragraph rationale of a suggestion, in the campaign owner's words.

It says what the window showed (the segment's KPI against the rest's, or how the KPI fell with a
creator's weekly posts), what the counterfactual gives with its interval, the cost per result
before and after, and the change itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from fbloop_assets.lib.tuning.results import Kpi

if TYPE_CHECKING:
    from fbloop_assets.lib.tuning.suggestions import Suggestion


def pct(value: float) -> str:
    return f"{value * 100:+.0f}%"


def segment_rationale(
    s: Suggestion, segment: str, weight: float, kpis: tuple[Kpi, Kpi], segment_value: float, rest_value: float
) -> str:
    """For a dropped segment (``weight`` 0) or one whose share grows (an untargeted value added)."""
    kpi, cost = kpis
    days = len(s.window)
    level = f"{s.confidence:.0%}"  # family-wise over the changes tested
    counts = f"({s.records:,} of {s.total_records:,} posts, from {s.creators:,} creators)"
    if weight == 0.0:
        what = (
            f"In the last {days} complete days, the campaign's {segment} had an average {kpi.label} of "
            f"{kpi.format(segment_value)}, against {kpi.format(rest_value)} for the rest of the campaign "
            f"{counts}. "
        )
        counterfactual = "Without those posts"
    else:
        what = (
            f"In the last {days} complete days, the campaign's {segment}, which it does not target yet, "
            f"had an average {kpi.label} of {kpi.format(segment_value)}, against "
            f"{kpi.format(rest_value)} for the rest {counts}. "
        )
        counterfactual = "With twice as many of those posts"
    return (
        what
        + f"{counterfactual}, the campaign's {kpi.label} would have been {kpi.format(s.expected)} instead of "
        f"{kpi.format(s.baseline)} ({pct(s.expected_change)}; with {level} confidence between "
        f"{pct(s.ci_low)} and {pct(s.ci_high)}), and its {cost.label} {cost.format(s.cost_expected)} "
        f"instead of {cost.format(s.cost_baseline)}. Suggested change: {s.change} "
        f"({s.parameter}: {s.current} -> {s.proposed})."
    )


def cadence_rationale(
    s: Suggestion,
    campaign: dict[str, Any],
    rows: pl.DataFrame,
    num: np.ndarray,
    den: np.ndarray,
    kpis: tuple[Kpi, Kpi],
) -> str:
    """For a lower cadence: the KPI of creators publishing up to the median weekly posts and above."""
    kpi, cost = kpis
    load = rows["posts_per_week"].to_numpy() + float(campaign["cadence_posts_per_week"])
    split = float(np.median(load))
    low, high = load <= split, load > split
    low_kpi = num[low].sum() / den[low].sum() if den[low].sum() > 0 else math.nan
    high_kpi = num[high].sum() / den[high].sum() if den[high].sum() > 0 else math.nan
    return (
        f"In the last {len(s.window)} complete days ({s.total_records:,} posts from {s.creators:,} "
        f"creators), the campaign's posts did worse the more their creator published in a week (own posts "
        f"plus the campaign's {campaign['cadence_posts_per_week']:g} sponsored ones): creators publishing "
        f"up to {split:.0f} posts a week had an average {kpi.label} of {kpi.format(low_kpi)}, those "
        f"publishing more {kpi.format(high_kpi)}. With {s.proposed:g} instead of {s.current:g} sponsored "
        f"posts per week, every creator would publish less; following that trend, its {kpi.label} would "
        f"have been {kpi.format(s.expected)} instead of {kpi.format(s.baseline)} ({pct(s.expected_change)}; "
        f"with {s.confidence:.0%} confidence between {pct(s.ci_low)} and {pct(s.ci_high)}), and its "
        f"{cost.label} {cost.format(s.cost_expected)} instead of {cost.format(s.cost_baseline)}. "
        f"Suggested change: {s.change}."
    )
