"""Campaign tuning: evidence-backed changes to a campaign's own settings, with their rationale.

Input is `daily_results`: for each complete serving day (every attribution window closed), one
row per (campaign, creator, sponsored posts of that creator for the campaign in the week ending
that day) with the posts, their outcomes summed inside the windows, their cost and the creator's
attributes. For every active campaign, `tune_campaign` compares segments of what it ran on the KPI
that fits its objective and proposes concrete changes to its settings:

- follower tier (nano, micro, macro, mega): drop tiers at either end (raise `min_followers`,
  lower `max_followers`);
- engagement rate band: raise `min_engagement_rate` one band;
- niche, audience age bucket, audience country: drop a targeted value, or add an untargeted one
  that does better;
- creators' weekly posts (their own plus the campaign's): lower `cadence_posts_per_week` (at most
  halve it), from the fitted trend of the KPI over weekly posts.

Each change is a counterfactual re-weighting of the window's posts: dropping a segment gives its
posts weight 0, adding one doubles them (its share grows), and the KPI of the re-weighted posts
is compared with the KPI as run. The relative change carries a percentile bootstrap interval that
resamples creators (a creator's posts are correlated), so a handful of creators cannot make a
suggestion. A change is proposed only with enough posts and creators behind it, when its
interval excludes no improvement, when the point estimate reaches ``min_effect``, when the cost
per result does not rise by more than ``min_effect``, and when the campaign keeps at least
``min_pool_size`` eligible creators that match it. Suggestions are ranked by expected
improvement. What it does not do: spend data from other campaigns, or model how serving would
redistribute the freed budget (the counterfactual assumes the remaining posts stay as they were).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import TuningConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.ingest.landing import LIST_SEPARATOR
from fbloop_assets.lib.scoring.features import TIER_FLOORS, CreatorFeatures, tier_index

OUTCOMES = ("impressions", "engagements", "clicks", "conversions")
CREATOR_ATTRIBUTES = (
    "follower_count",
    "engagement_rate",
    "niche",
    "audience_age_bucket",
    "audience_country",
    "cost_per_post",
    "posts_per_week",
)
RESULTS_SCHEMA: dict[str, pl.DataType] = {
    "serving_day": pl.Date(),
    "campaign_id": pl.String(),
    "creator_id": pl.String(),
    "posts": pl.Int64(),
    **{c: pl.Float64() for c in OUTCOMES},
    "cost": pl.Float64(),
    "follower_count": pl.Int64(),
    "engagement_rate": pl.Float64(),
    "niche": pl.String(),
    "audience_age_bucket": pl.String(),
    "audience_country": pl.String(),
    "cost_per_post": pl.Float64(),
    "posts_per_week": pl.Float64(),
}
TIER_NAMES = ("nano", "micro", "macro", "mega")
ENGAGEMENT_BANDS = (0.005, 0.01, 0.02, 0.04)  # lower edges a raised minimum engagement rate may take


@dataclass(frozen=True)
class Kpi:
    """A ratio of sums over posts; ``higher_is_better`` says which direction is an improvement."""

    name: str
    label: str
    numerator: str
    denominator: str
    higher_is_better: bool
    scale: float = 1.0
    unit: str = "%"  # "%" or "EUR"

    def format(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value * 100:.2f}%" if self.unit == "%" else f"EUR {value:,.2f}"


KPIS: dict[str, tuple[Kpi, Kpi]] = {
    "conversions": (
        Kpi("conversion_rate", "conversion rate (sales per click)", "conversions", "clicks", True),
        Kpi("cost_per_acquisition", "cost per sale", "cost", "conversions", False, unit="EUR"),
    ),
    "engagement": (
        Kpi(
            "engagement_rate",
            "engagement rate (engagements per impression)",
            "engagements",
            "impressions",
            True,
        ),
        Kpi("cost_per_engagement", "cost per engagement", "cost", "engagements", False, unit="EUR"),
    ),
    "awareness": (
        Kpi(
            "click_through_rate", "click-through rate (clicks per impression)", "clicks", "impressions", True
        ),
        Kpi("cost_per_mille", "cost per 1,000 impressions", "cost", "impressions", False, 1000.0, "EUR"),
    ),
}


def daily_results(examples: pl.DataFrame, creators: pl.DataFrame, serving_day: date) -> pl.DataFrame:
    """One complete serving day, aggregated per (campaign, creator), with the creator's attributes.

    ``examples``: recommendations with ``serving_day`` and their outcomes inside the attribution
    windows (the FeedbackDataset's columns); ``creators``: the snapshot of ``serving_day``. Every
    served recommendation counts as one sponsored post at the creator's price.
    """
    served = examples.filter(pl.col("serving_day") == serving_day)
    if served.is_empty():
        return pl.DataFrame(schema=RESULTS_SCHEMA)
    frame = (
        served.group_by("campaign_id", "creator_id")
        .agg(pl.len().cast(pl.Int64).alias("posts"), *(pl.col(c).sum() for c in OUTCOMES))
        .join(creators.select("creator_id", *CREATOR_ATTRIBUTES), on="creator_id", how="inner")
        .with_columns(
            pl.lit(serving_day).alias("serving_day"),
            (pl.col("posts") * pl.col("cost_per_post")).alias("cost"),
        )
    )
    return frame.select(list(RESULTS_SCHEMA)).cast(RESULTS_SCHEMA).sort("campaign_id", "creator_id")  # type: ignore[arg-type]


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
class _Candidate:
    parameter: str
    proposed: Any
    change: str
    segment: str  # plain words: "posts by mega creators (1M followers and more)"
    rows: np.ndarray  # boolean mask of the rows the change acts on
    weight: float  # 0: the segment is dropped; 2: its share grows
    campaign_after: dict[str, Any]
    shift: int = 0  # cadence: weekly posts fewer per creator (a shift along the dose-response curve)


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


def _targets(campaign: dict[str, Any], column: str) -> list[str]:
    return [v for v in str(campaign[column] or "").split(LIST_SEPARATOR) if v]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _candidates(campaign: dict[str, Any], rows: pl.DataFrame) -> list[_Candidate]:
    """Every change this campaign's own posts can speak to (evidence is checked later)."""
    out: list[_Candidate] = []
    tiers = rows.select(tier_index(pl.col("follower_count")).alias("t"))["t"].to_numpy()
    present = sorted(set(tiers.tolist()))
    for t in present[1:]:  # lower the ceiling below tier t: drops t and every tier above it
        dropped = [TIER_NAMES[x] for x in present if x >= t]
        out.append(
            _Candidate(
                "max_followers",
                TIER_FLOORS[t] - 1,
                f"drop {' and '.join(dropped)} creators",
                f"posts by creators with {TIER_FLOORS[t]:,} followers or more ({', '.join(dropped)})",
                tiers >= t,
                0.0,
                campaign | {"max_followers": TIER_FLOORS[t] - 1},
            )
        )
    for t in present[:-1]:  # raise the floor above tier t: drops t and every tier below it
        dropped = [TIER_NAMES[x] for x in present if x <= t]
        out.append(
            _Candidate(
                "min_followers",
                TIER_FLOORS[t + 1],
                f"drop {' and '.join(dropped)} creators",
                f"posts by creators with fewer than {TIER_FLOORS[t + 1]:,} followers ({', '.join(dropped)})",
                tiers <= t,
                0.0,
                campaign | {"min_followers": TIER_FLOORS[t + 1]},
            )
        )
    rate = rows["engagement_rate"].to_numpy()
    above = [b for b in ENGAGEMENT_BANDS if b > campaign["min_engagement_rate"]]
    if above:
        band = above[0]  # one band per change: the floor rises step by step
        out.append(
            _Candidate(
                "min_engagement_rate",
                band,
                f"raise the minimum engagement rate to {band:.1%}",
                f"posts by creators with an engagement rate below {band:.1%}",
                rate < band,
                0.0,
                campaign | {"min_engagement_rate": band},
            )
        )
    for column, target, words in (
        ("niche", "target_niches", "creators in the {} niche"),
        ("audience_age_bucket", "target_age_buckets", "creators whose audience is mostly aged {}"),
        ("audience_country", "target_countries", "creators whose audience is mostly in {}"),
    ):
        targeted = _targets(campaign, target)
        values = rows[column].to_numpy()
        for value in sorted(set(values.tolist())):
            segment = words.format(value)
            if value in targeted:
                if len(targeted) < 2:
                    continue
                kept = [v for v in targeted if v != value]
                proposed = LIST_SEPARATOR.join(kept)
                out.append(
                    _Candidate(
                        target,
                        proposed,
                        f"stop targeting {value}",
                        f"posts by {segment}",
                        values == value,
                        0.0,
                        campaign | {target: proposed},
                    )
                )
            else:
                proposed = LIST_SEPARATOR.join([*targeted, value])
                out.append(
                    _Candidate(
                        target,
                        proposed,
                        f"also target {value}",
                        f"posts by {segment}",
                        values == value,
                        2.0,
                        campaign | {target: proposed},
                    )
                )
    cadence = float(campaign["cadence_posts_per_week"])
    everything = np.ones(rows.height, dtype=bool)
    # At most halve the cadence in one change.
    for proposed_cadence in range(max(1, math.ceil(cadence / 2)), math.ceil(cadence)):
        shift = round(cadence - proposed_cadence)
        out.append(
            _Candidate(
                "cadence_posts_per_week",
                float(proposed_cadence),
                f"lower the cadence to {proposed_cadence} sponsored post(s) per creator and week",
                "all posts",
                everything,
                1.0,
                campaign | {"cadence_posts_per_week": float(proposed_cadence)},
                shift,
            )
        )
    return out


def _pool_size(catalog: CreatorFeatures | None, campaign: dict[str, Any], target: str | None) -> int | None:
    """Eligible creators (hard filters) that also match ``target``'s list, under ``campaign``."""
    if catalog is None:
        return None
    eligible, _ = catalog.pool(campaign)
    if target is None:
        return int(eligible.size)
    column = {"target_niches": catalog.niche, "target_age_buckets": catalog.age_bucket}.get(
        target, catalog.country
    )
    values, codes = column
    matches = np.isin(values, _targets(campaign, target))[codes[eligible]]
    return int(matches.sum())


def _rng(campaign_id: str, day: date) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(campaign_id.encode()), day.toordinal()])


def _pct(value: float) -> str:
    return f"{value * 100:+.0f}%"


def _rationale(
    s: Suggestion, segment: str, weight: float, kpis: tuple[Kpi, Kpi], segment_value: float, rest_value: float
) -> str:
    kpi, cost = kpis
    days = len(s.window)
    level = f"{s.confidence:.0%}"  # family-wise over the changes tested
    counts = f"({s.records:,} of {s.total_records:,} posts, from {s.creators:,} creators)"
    if weight == 0.0:
        what = (
            f"In the last {days} complete days, the campaign's {segment} had an average {kpi.label} of "
            f"{kpi.format(segment_value)}, against {kpi.format(rest_value)} for the rest of the campaign "
            f"({s.records:,} of {s.total_records:,} posts, from {s.creators:,} creators). "
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
        f"{kpi.format(s.baseline)} ({_pct(s.expected_change)}; with {level} confidence between "
        f"{_pct(s.ci_low)} and {_pct(s.ci_high)}), and its {cost.label} {cost.format(s.cost_expected)} "
        f"instead of {cost.format(s.cost_baseline)}. Suggested change: {s.change} "
        f"({s.parameter}: {s.current} -> {s.proposed})."
    )


def _cadence_slope(
    w: np.ndarray, num: np.ndarray, den: np.ndarray, load: np.ndarray, posts: np.ndarray
) -> np.ndarray:
    """Per resample (rows of ``w``): the slope of log KPI on a creator's weekly posts.

    One point per creator (weighted by its posts): its KPI, shrunk towards the campaign's by half
    an event so that creators with few events stay finite, against the posts it publishes in a
    week (own plus sponsored). A least-squares line over creators is far less noisy than
    comparing ratios of sums, which the biggest creators dominate.
    """
    baseline = num.sum() / den.sum()
    y = np.log((num + 0.5) / (den + 0.5 / baseline))
    weights = w * posts[None, :]
    total = weights.sum(axis=1)
    mx, my = weights @ load / total, weights @ y / total
    sxy = weights @ (load * y) / total - mx * my
    sxx = weights @ (load * load) / total - mx * mx
    with np.errstate(divide="ignore", invalid="ignore"):
        return sxy / sxx


def _cadence_rationale(
    s: Suggestion,
    campaign: dict[str, Any],
    rows: pl.DataFrame,
    num: np.ndarray,
    den: np.ndarray,
    kpis: tuple[Kpi, Kpi],
) -> str:
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
        f"have been {kpi.format(s.expected)} instead of {kpi.format(s.baseline)} ({_pct(s.expected_change)}; "
        f"with {s.confidence:.0%} confidence between {_pct(s.ci_low)} and {_pct(s.ci_high)}), and its "
        f"{cost.label} {cost.format(s.cost_expected)} instead of {cost.format(s.cost_baseline)}. "
        f"Suggested change: {s.change}."
    )


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
    campaign_id = campaign["campaign_id"]
    kpis = KPIS[campaign["objective"]]
    kpi, cost_kpi = kpis
    rows = (
        results.filter(pl.col("campaign_id") == campaign_id)
        .sort("serving_day")
        .group_by("creator_id", maintain_order=True)
        .agg(
            pl.col("posts").sum(),
            *(pl.col(c).sum() for c in (*OUTCOMES, "cost")),
            *(pl.col(c).last() for c in CREATOR_ATTRIBUTES),
        )
        .sort("creator_id")
    )
    empty = CampaignTuning(campaign_id, campaign["objective"], kpi.name, None, 0, 0, [], None, 0)
    if rows.is_empty():
        return empty
    posts = rows["posts"].to_numpy().astype(np.float64)
    columns = {c: rows[c].to_numpy().astype(np.float64) for c in ("posts", *OUTCOMES, "cost")}
    num, den = columns[kpi.numerator] * kpi.scale, columns[kpi.denominator]
    cnum, cden = columns[cost_kpi.numerator] * cost_kpi.scale, columns[cost_kpi.denominator]
    creator_ids, creator_idx = np.unique(rows["creator_id"].to_numpy().astype(str), return_inverse=True)
    total = int(posts.sum())
    base_den = den.sum()
    baseline = float(num.sum() / base_den) if base_den > 0 else None
    empty = replace(empty, baseline=baseline, records=total, creators=int(creator_ids.size))
    if baseline is None or baseline <= 0:
        return empty

    # Poisson bootstrap over creators: one weight per creator and resample, shared by every candidate.
    draws = _rng(campaign_id, day).poisson(1.0, size=(config.bootstrap_samples, creator_ids.size))
    w = draws[:, creator_idx].astype(np.float64)  # (resamples, rows)

    def ratio(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (weights @ a) / (weights @ b)

    base_boot = ratio(w, num, den)
    cost_base = float(cnum.sum() / cden.sum()) if cden.sum() > 0 else math.inf
    window_days = [d.isoformat() for d in window]
    found: list[tuple[Suggestion, _Candidate]] = []
    testable = []
    for cand in _candidates(campaign, rows):
        segment_posts = int(posts[cand.rows].sum())
        segment_creators = int(np.unique(creator_idx[cand.rows]).size)
        if segment_posts < config.min_records or segment_creators < config.min_creators:
            continue
        if cand.weight == 0.0 and segment_posts == total:
            continue
        if cand.shift and np.ptp(rows["posts_per_week"].to_numpy()) < 1.0:
            continue  # no spread in weekly posts: nothing to learn the curve from
        testable.append((cand, segment_posts, segment_creators))
    considered = len(testable)
    # Bonferroni: with m changes tested, each interval is at level 1 - (1 - confidence) / m, so the
    # chance that any of a campaign's suggestions is a fluke stays below 1 - confidence.
    alpha = (1.0 - config.confidence) / 2.0 / max(considered, 1)
    for cand, segment_posts, segment_creators in testable:
        v = np.where(cand.rows, cand.weight, 1.0)
        if (v * den).sum() <= 0:
            continue
        if cand.shift:
            # one post fewer a week moves every creator down the fitted curve by one step
            load = rows["posts_per_week"].to_numpy() + float(campaign["cadence_posts_per_week"])
            slope = float(_cadence_slope(np.ones((1, num.size)), num, den, load, posts)[0])
            expected = baseline * math.exp(-slope * cand.shift)
            with np.errstate(invalid="ignore"):
                boot = np.exp(-_cadence_slope(w, num, den, load, posts) * cand.shift) - 1.0
        else:
            expected = float((v * num).sum() / (v * den).sum())
            with np.errstate(divide="ignore", invalid="ignore"):
                boot = ratio(w, v * num, v * den) / base_boot - 1.0
        change = expected / baseline - 1.0
        boot = boot[np.isfinite(boot)]
        if boot.size < config.bootstrap_samples // 2:
            continue
        low, high = (float(x) for x in np.quantile(boot, [alpha, 1.0 - alpha]))
        if cand.shift:
            # same posts at the same price: only the results per post change
            same_results = cost_kpi.denominator != kpi.numerator
            cost_expected = cost_base if same_results else cost_base * baseline / expected
        else:
            cost_expected = float((v * cnum).sum() / (v * cden).sum()) if (v * cden).sum() > 0 else math.inf
        cost_change = cost_expected / cost_base - 1.0 if math.isfinite(cost_base) else 0.0
        if change < config.min_effect or low <= 0.0 or not cost_change <= config.min_effect:
            continue
        if skip(cand.parameter, cand.proposed):
            continue
        target = cand.parameter if cand.parameter.startswith("target_") else None
        after = _pool_size(catalog, cand.campaign_after, target)
        if after is not None and after < config.min_pool_size:
            continue
        seg_num, seg_den = num[cand.rows].sum(), den[cand.rows].sum()
        rest_num, rest_den = num[~cand.rows].sum(), den[~cand.rows].sum()
        suggestion = Suggestion(
            id=suggestion_id(campaign_id, day, cand.parameter, cand.proposed),
            campaign_id=campaign_id,
            day=day.isoformat(),
            parameter=cand.parameter,
            current=campaign[cand.parameter],
            proposed=cand.proposed,
            change=cand.change,
            kpi=kpi.name,
            baseline=baseline,
            expected=expected,
            expected_change=change,
            ci_low=low,
            ci_high=high,
            confidence=config.confidence,
            cost_kpi=cost_kpi.name,
            cost_baseline=cost_base,
            cost_expected=cost_expected,
            cost_change=cost_change,
            records=segment_posts,
            creators=segment_creators,
            total_records=total,
            window=window_days,
            rationale="",
        )
        if cand.shift:
            text = _cadence_rationale(suggestion, campaign, rows, num, den, kpis)
        else:
            text = _rationale(
                suggestion,
                cand.segment,
                cand.weight,
                kpis,
                float(seg_num / seg_den) if seg_den > 0 else math.nan,
                float(rest_num / rest_den) if rest_den > 0 else math.nan,
            )
        found.append((replace(suggestion, rationale=text), cand))
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
    ranked = sorted(best.values(), key=lambda s: -s.expected_change)[: config.max_suggestions_per_campaign]
    return replace(empty, suggestions=ranked, considered=considered)


def active_campaigns(campaigns: pl.DataFrame, day: date) -> pl.DataFrame:
    return campaigns.filter((pl.col("start_date") <= day) & (pl.col("end_date") >= day)).sort("campaign_id")


def realized_kpi(results: pl.DataFrame, campaign_id: str, objective: str, after: date) -> dict[str, Any]:
    """The campaign's KPI over its posts served after ``after`` (complete days only)."""
    kpi = KPIS[objective][0]
    rows = results.filter((pl.col("campaign_id") == campaign_id) & (pl.col("serving_day") > after))
    den = float(rows[kpi.denominator].sum()) if rows.height else 0.0
    return {
        "kpi": kpi.name,
        "value": float(rows[kpi.numerator].sum()) * kpi.scale / den if den > 0 else None,
        "records": int(rows["posts"].sum()) if rows.height else 0,
        "days": rows["serving_day"].n_unique() if rows.height else 0,
    }


def load_record(lake: Lake, day: date | None = None) -> dict[str, Any]:
    """The suggestions record of ``day``, else of the newest materialized day."""
    folder = lake.root / "warehouse" / "campaign_tuning_suggestions"
    if day is not None:
        path = lake.record_path("campaign_tuning_suggestions", day)
    else:
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not found:
            raise FileNotFoundError(
                "no campaign_tuning_suggestions materialized yet: run the daily loop first"
            )
        path = found[-1]
    if not path.exists():
        raise FileNotFoundError(f"campaign_tuning_suggestions is not materialized for {day}")
    return json.loads(path.read_text())
