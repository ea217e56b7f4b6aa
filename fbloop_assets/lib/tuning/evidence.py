"""One campaign's window of posts as arrays, the bootstrap over its creators, and what a change would do.

`campaign_window` sums a campaign's rows of `daily_results` per creator. `bootstrap` draws one
Poisson weight per creator and resample (a creator's posts are correlated, so creators are what
is resampled), shared by every candidate change of the campaign. `estimate` gives a candidate's
expected KPI, its relative change with a percentile interval, and the cost per result after it:
for a dropped or doubled segment the KPI of the re-weighted posts, for a lower cadence a step
down the weighted least-squares line of the creators' log KPI over their weekly posts.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.tuning.candidates import Candidate
from fbloop_assets.lib.tuning.results import CREATOR_ATTRIBUTES, KPIS, OUTCOMES, Kpi


@dataclass(frozen=True)
class CampaignWindow:
    """A campaign's posts over the window, one row per creator, and the sums its KPIs are made of."""

    rows: pl.DataFrame
    kpis: tuple[Kpi, Kpi]
    posts: np.ndarray
    num: np.ndarray  # the KPI's numerator per creator (scaled), and its denominator
    den: np.ndarray
    cnum: np.ndarray  # the same for the cost per result
    cden: np.ndarray
    creator_idx: np.ndarray  # each row's creator, as an index into the unique creators
    creators: int
    total: int  # posts
    baseline: float | None  # the KPI as run
    cost_base: float

    @property
    def load(self) -> np.ndarray:
        """Posts a week of each creator: its own plus the campaign's sponsored ones."""
        return self.rows["posts_per_week"].to_numpy()


@dataclass(frozen=True)
class Bootstrap:
    w: np.ndarray  # (resamples, rows): each row's creator's Poisson weight
    base: np.ndarray  # the KPI as run, per resample


@dataclass(frozen=True)
class Estimate:
    expected: float
    change: float  # relative change of the KPI
    ci_low: float
    ci_high: float
    cost_expected: float
    cost_change: float


def _ratio(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (weights @ a) / (weights @ b)


def campaign_window(campaign: dict[str, Any], results: pl.DataFrame) -> CampaignWindow | None:
    """The campaign's rows of `daily_results`, summed per creator (None: it ran no posts)."""
    rows = (
        results.filter(pl.col("campaign_id") == campaign["campaign_id"])
        .sort("serving_day")
        .group_by("creator_id", maintain_order=True)
        .agg(
            pl.col("posts").sum(),
            *(pl.col(c).sum() for c in (*OUTCOMES, "cost")),
            *(pl.col(c).last() for c in CREATOR_ATTRIBUTES),
        )
        .sort("creator_id")
    )
    if rows.is_empty():
        return None
    kpi, cost_kpi = kpis = KPIS[campaign["objective"]]
    columns = {c: rows[c].to_numpy().astype(np.float64) for c in ("posts", *OUTCOMES, "cost")}
    num, den = columns[kpi.numerator] * kpi.scale, columns[kpi.denominator]
    cnum, cden = columns[cost_kpi.numerator] * cost_kpi.scale, columns[cost_kpi.denominator]
    creator_ids, creator_idx = np.unique(rows["creator_id"].to_numpy().astype(str), return_inverse=True)
    base_den = den.sum()
    return CampaignWindow(
        rows=rows,
        kpis=kpis,
        posts=rows["posts"].to_numpy().astype(np.float64),
        num=num,
        den=den,
        cnum=cnum,
        cden=cden,
        creator_idx=creator_idx,
        creators=int(creator_ids.size),
        total=int(columns["posts"].sum()),
        baseline=float(num.sum() / base_den) if base_den > 0 else None,
        cost_base=float(cnum.sum() / cden.sum()) if cden.sum() > 0 else math.inf,
    )


def bootstrap(window: CampaignWindow, campaign_id: str, day: date, samples: int) -> Bootstrap:
    """Poisson weights per creator and resample, seeded by campaign and day (a re-run is identical)."""
    rng = np.random.default_rng([zlib.crc32(campaign_id.encode()), day.toordinal()])
    draws = rng.poisson(1.0, size=(samples, window.creators))
    w = draws[:, window.creator_idx].astype(np.float64)
    return Bootstrap(w, _ratio(w, window.num, window.den))


def cadence_slope(
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


def estimate(
    cand: Candidate, window: CampaignWindow, boot: Bootstrap, cadence: float, alpha: float
) -> Estimate | None:
    """What ``cand`` would have done to the campaign's KPI and cost per result, with a
    ``1 - 2 alpha`` percentile interval; None when it removes every denominator or when fewer
    than half the resamples give a finite estimate."""
    kpi, cost_kpi = window.kpis
    num, den, baseline = window.num, window.den, window.baseline
    assert baseline is not None
    v = np.where(cand.rows, cand.weight, 1.0)
    if (v * den).sum() <= 0:
        return None
    if cand.shift:
        # one post fewer a week moves every creator down the fitted curve by one step
        load = window.load + cadence
        slope = float(cadence_slope(np.ones((1, num.size)), num, den, load, window.posts)[0])
        expected = baseline * math.exp(-slope * cand.shift)
        with np.errstate(invalid="ignore"):
            changes = np.exp(-cadence_slope(boot.w, num, den, load, window.posts) * cand.shift) - 1.0
    else:
        expected = float((v * num).sum() / (v * den).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            changes = _ratio(boot.w, v * num, v * den) / boot.base - 1.0
    changes = changes[np.isfinite(changes)]
    if changes.size < boot.w.shape[0] // 2:
        return None
    low, high = (float(x) for x in np.quantile(changes, [alpha, 1.0 - alpha]))
    cost_base = window.cost_base
    if cand.shift:
        # same posts at the same price: only the results per post change
        same_results = cost_kpi.denominator != kpi.numerator
        cost_expected = cost_base if same_results else cost_base * baseline / expected
    else:
        cnum, cden = window.cnum, window.cden
        cost_expected = float((v * cnum).sum() / (v * cden).sum()) if (v * cden).sum() > 0 else math.inf
    cost_change = cost_expected / cost_base - 1.0 if math.isfinite(cost_base) else 0.0
    return Estimate(expected, expected / baseline - 1.0, low, high, cost_expected, cost_change)
