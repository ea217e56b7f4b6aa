"""Campaign tuning: evidence-backed changes to a campaign's own settings, with their rationale.

Input is `daily_results` (`results`): for each complete serving day (every attribution window
closed), one row per (campaign, creator) with the posts, their outcomes summed inside the
windows, their cost and the creator's attributes. For every active campaign, `tune_campaign`
compares segments of what it ran on the KPI that fits its objective and proposes concrete
changes to its settings (`candidates`):

- follower tier (nano, micro, macro, mega): drop tiers at either end (raise `min_followers`,
  lower `max_followers`);
- engagement rate band: raise `min_engagement_rate` one band;
- niche, audience age bucket, audience country: drop a targeted value, or add an untargeted one
  that does better;
- creators' weekly posts (their own plus the campaign's): lower `cadence_posts_per_week` (at most
  halve it), from the fitted trend of the KPI over weekly posts.

Each change is a counterfactual re-weighting of the window's posts: dropping a segment gives its
posts weight 0, adding one doubles them (its share grows), and the KPI of the re-weighted posts
is compared with the KPI as run (`evidence`). The relative change carries a percentile bootstrap
interval that resamples creators (a creator's posts are correlated), so a handful of creators
cannot make a suggestion. A change is proposed only with enough posts and creators behind it,
when its interval excludes no improvement, when the point estimate reaches ``min_effect``, when
the cost per result does not rise by more than ``min_effect``, and when the campaign keeps at
least ``min_pool_size`` eligible creators that match it. Suggestions are ranked by expected
improvement. What it does not do: spend data from other campaigns, or model how serving would
redistribute the freed budget (the counterfactual assumes the remaining posts stay as they were).
The safeguards that depend on the owners' decisions (a weekly cap, rejected changes) are
`policy`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import TuningConfig
from fbloop_assets.lib.scoring.features import CreatorFeatures
from fbloop_assets.lib.tuning.candidates import Candidate, candidates, pool_size
from fbloop_assets.lib.tuning.evidence import CampaignWindow, Estimate, bootstrap, campaign_window, estimate
from fbloop_assets.lib.tuning.rationale import cadence_rationale, segment_rationale
from fbloop_assets.lib.tuning.results import (
    CREATOR_ATTRIBUTES,
    KPIS,
    OUTCOMES,
    RESULTS_SCHEMA,
    Kpi,
    active_campaigns,
    daily_results,
    realized_kpi,
)

__all__ = [  # the engine's names, importable from here as before the split
    "CREATOR_ATTRIBUTES",
    "KPIS",
    "OUTCOMES",
    "RESULTS_SCHEMA",
    "CampaignTuning",
    "Kpi",
    "Suggestion",
    "active_campaigns",
    "daily_results",
    "realized_kpi",
    "suggestion_id",
    "tune_campaign",
]


def suggestion_id(campaign_id: str, day: date, parameter: str, proposed: Any) -> str:
    """Content-addressed: the same change proposed for the same campaign on the same day."""
    key = json.dumps([campaign_id, day.isoformat(), parameter, proposed], sort_keys=True, default=str)
    return "ts-" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Suggestion:
    id: str
    campaign_id: str
    day: str
    parameter: str
    current: Any
    proposed: Any
    change: str  # a short plain summary ("drop mega creators")
    kpi: str
    baseline: float
    expected: float
    expected_change: float  # relative change of the KPI
    ci_low: float
    ci_high: float
    confidence: float
    cost_kpi: str
    cost_baseline: float
    cost_expected: float
    cost_change: float
    records: int  # posts in the segment the change acts on
    creators: int
    total_records: int
    window: list[str]
    rationale: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CampaignTuning:
    campaign_id: str
    objective: str
    kpi: str
    baseline: float | None
    records: int
    creators: int
    suggestions: list[Suggestion]
    held: str | None  # why no suggestion is computed (bounded changes), else None
    considered: int  # candidate changes with enough evidence that were tested

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "suggestions": [s.as_dict() for s in self.suggestions]}


def _testable(
    window: CampaignWindow, found: list[Candidate], config: TuningConfig
) -> list[tuple[Candidate, int, int]]:
    """The candidates with enough posts and creators in their segment: (candidate, posts, creators)."""
    out = []
    for cand in found:
        segment_posts = int(window.posts[cand.rows].sum())
        segment_creators = int(np.unique(window.creator_idx[cand.rows]).size)
        if segment_posts < config.min_records or segment_creators < config.min_creators:
            continue
        if cand.weight == 0.0 and segment_posts == window.total:
            continue
        if cand.shift and np.ptp(window.rows["posts_per_week"].to_numpy()) < 1.0:
            continue  # no spread in weekly posts: nothing to learn the curve from
        out.append((cand, segment_posts, segment_creators))
    return out


def _suggestion(
    campaign: dict[str, Any],
    window: CampaignWindow,
    cand: Candidate,
    est: Estimate,
    counts: tuple[int, int],
    day: date,
    days: list[date],
    confidence: float,
) -> Suggestion:
    kpi, cost_kpi = window.kpis
    assert window.baseline is not None
    suggestion = Suggestion(
        id=suggestion_id(campaign["campaign_id"], day, cand.parameter, cand.proposed),
        campaign_id=campaign["campaign_id"],
        day=day.isoformat(),
        parameter=cand.parameter,
        current=campaign[cand.parameter],
        proposed=cand.proposed,
        change=cand.change,
        kpi=kpi.name,
        baseline=window.baseline,
        expected=est.expected,
        expected_change=est.change,
        ci_low=est.ci_low,
        ci_high=est.ci_high,
        confidence=confidence,
        cost_kpi=cost_kpi.name,
        cost_baseline=window.cost_base,
        cost_expected=est.cost_expected,
        cost_change=est.cost_change,
        records=counts[0],
        creators=counts[1],
        total_records=window.total,
        window=[d.isoformat() for d in days],
        rationale="",
    )
    num, den = window.num, window.den
    if cand.shift:
        text = cadence_rationale(suggestion, campaign, window.rows, num, den, window.kpis)
    else:
        seg_num, seg_den = num[cand.rows].sum(), den[cand.rows].sum()
        rest_num, rest_den = num[~cand.rows].sum(), den[~cand.rows].sum()
        text = segment_rationale(
            suggestion,
            cand.segment,
            cand.weight,
            window.kpis,
            float(seg_num / seg_den) if seg_den > 0 else math.nan,
            float(rest_num / rest_den) if rest_den > 0 else math.nan,
        )
    return replace(suggestion, rationale=text)


def _one_per_parameter(found: list[tuple[Suggestion, Candidate]], config: TuningConfig) -> list[Suggestion]:
    """At most one change per parameter, ranked by expected improvement, at most the configured few."""
    best: dict[str, Suggestion] = {}
    for parameter in sorted({s.parameter for s, _ in found}):
        options = [(s, c) for s, c in found if s.parameter == parameter]
        if parameter.startswith("target_"):  # alternatives: the best one
            best[parameter] = max(options, key=lambda o: o[0].expected_change)[0]
            continue
        # Nested steps (a lower ceiling drops more tiers): the mildest, unless a bolder one adds at
        # least min_effect on top of it.
        options.sort(key=lambda o: (o[1].shift, o[0].records))
        pick = options[0][0]
        for option, _ in options[1:]:
            if (1 + option.expected_change) / (1 + pick.expected_change) - 1 >= config.min_effect:
                pick = option
        best[parameter] = pick
    return sorted(best.values(), key=lambda s: -s.expected_change)[: config.max_suggestions_per_campaign]


def tune_campaign(
    campaign: dict[str, Any],
    results: pl.DataFrame,
    day: date,
    window: list[date],
    config: TuningConfig,
    catalog: CreatorFeatures | None = None,
    skip: Callable[[str, Any], bool] = lambda parameter, proposed: False,
) -> CampaignTuning:
    """The ranked suggestions for one campaign from its rows of `daily_results` over ``window``.

    ``catalog``: the current creators, for the pool floor (None skips that safeguard);
    ``skip(parameter, proposed)``: changes not to propose again (recently rejected).
    """
    kpi = KPIS[campaign["objective"]][0]
    empty = CampaignTuning(campaign["campaign_id"], campaign["objective"], kpi.name, None, 0, 0, [], None, 0)
    ran = campaign_window(campaign, results)
    if ran is None:
        return empty
    empty = replace(empty, baseline=ran.baseline, records=ran.total, creators=ran.creators)
    if ran.baseline is None or ran.baseline <= 0:
        return empty
    boot = bootstrap(ran, campaign["campaign_id"], day, config.bootstrap_samples)
    testable = _testable(ran, candidates(campaign, ran.rows), config)
    # Bonferroni: with m changes tested, each interval is at level 1 - (1 - confidence) / m, so the
    # chance that any of a campaign's suggestions is a fluke stays below 1 - confidence.
    alpha = (1.0 - config.confidence) / 2.0 / max(len(testable), 1)
    found: list[tuple[Suggestion, Candidate]] = []
    for cand, segment_posts, segment_creators in testable:
        est = estimate(cand, ran, boot, float(campaign["cadence_posts_per_week"]), alpha)
        if est is None or est.change < config.min_effect or est.ci_low <= 0.0:
            continue
        if not est.cost_change <= config.min_effect or skip(cand.parameter, cand.proposed):
            continue
        target = cand.parameter if cand.parameter.startswith("target_") else None
        after = pool_size(catalog, cand.campaign_after, target)
        if after is not None and after < config.min_pool_size:
            continue
        counts = (segment_posts, segment_creators)
        found.append((_suggestion(campaign, ran, cand, est, counts, day, window, config.confidence), cand))
    return replace(empty, suggestions=_one_per_parameter(found, config), considered=len(testable))
