"""The changes a campaign's own posts can speak to, as counterfactual re-weightings of those posts.

Every candidate names the parameter, its proposed value, the rows (a campaign's creators over
the window) it acts on and how: weight 0 drops them (a narrower filter), weight 2 doubles their
share (a value added to a target list), a ``shift`` moves every creator down the fitted curve of
the KPI over weekly posts (a lower cadence). Whether there is enough evidence for a candidate is
judged later (`evidence`, `suggestions`); `pool_size` tells how many eligible creators a changed
campaign would keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.ingest.landing import LIST_SEPARATOR
from fbloop_assets.lib.scoring.features import TIER_FLOORS, CreatorFeatures, tier_index

TIER_NAMES = ("nano", "micro", "macro", "mega")
ENGAGEMENT_BANDS = (0.005, 0.01, 0.02, 0.04)  # lower edges a raised minimum engagement rate may take
TARGETS = (  # creator attribute, the campaign's list of targeted values, the segment in words
    ("niche", "target_niches", "creators in the {} niche"),
    ("audience_age_bucket", "target_age_buckets", "creators whose audience is mostly aged {}"),
    ("audience_country", "target_countries", "creators whose audience is mostly in {}"),
)


@dataclass(frozen=True)
class Candidate:
    parameter: str
    proposed: Any
    change: str
    segment: str  # plain words: "posts by mega creators (1M followers and more)"
    rows: np.ndarray  # boolean mask of the rows the change acts on
    weight: float  # 0: the segment is dropped; 2: its share grows
    campaign_after: dict[str, Any]
    shift: int = 0  # cadence: weekly posts fewer per creator (a shift along the dose-response curve)


def targets(campaign: dict[str, Any], column: str) -> list[str]:
    return [v for v in str(campaign[column] or "").split(LIST_SEPARATOR) if v]


def _tiers(campaign: dict[str, Any], rows: pl.DataFrame) -> list[Candidate]:
    out: list[Candidate] = []
    tiers = rows.select(tier_index(pl.col("follower_count")).alias("t"))["t"].to_numpy()
    present = sorted(set(tiers.tolist()))
    for t in present[1:]:  # lower the ceiling below tier t: drops t and every tier above it
        dropped = [TIER_NAMES[x] for x in present if x >= t]
        out.append(
            Candidate(
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
            Candidate(
                "min_followers",
                TIER_FLOORS[t + 1],
                f"drop {' and '.join(dropped)} creators",
                f"posts by creators with fewer than {TIER_FLOORS[t + 1]:,} followers ({', '.join(dropped)})",
                tiers <= t,
                0.0,
                campaign | {"min_followers": TIER_FLOORS[t + 1]},
            )
        )
    return out


def _engagement(campaign: dict[str, Any], rows: pl.DataFrame) -> list[Candidate]:
    above = [b for b in ENGAGEMENT_BANDS if b > campaign["min_engagement_rate"]]
    if not above:
        return []
    band = above[0]  # one band per change: the floor rises step by step
    return [
        Candidate(
            "min_engagement_rate",
            band,
            f"raise the minimum engagement rate to {band:.1%}",
            f"posts by creators with an engagement rate below {band:.1%}",
            rows["engagement_rate"].to_numpy() < band,
            0.0,
            campaign | {"min_engagement_rate": band},
        )
    ]


def _target_lists(campaign: dict[str, Any], rows: pl.DataFrame) -> list[Candidate]:
    out: list[Candidate] = []
    for column, target, words in TARGETS:
        targeted = targets(campaign, target)
        values = rows[column].to_numpy()
        for value in sorted(set(values.tolist())):
            if value in targeted and len(targeted) < 2:
                continue  # the campaign's only value: dropping it would target nothing
            if value in targeted:
                proposed = LIST_SEPARATOR.join(v for v in targeted if v != value)
                change, weight = f"stop targeting {value}", 0.0
            else:
                proposed = LIST_SEPARATOR.join([*targeted, value])
                change, weight = f"also target {value}", 2.0
            out.append(
                Candidate(
                    target,
                    proposed,
                    change,
                    f"posts by {words.format(value)}",
                    values == value,
                    weight,
                    campaign | {target: proposed},
                )
            )
    return out


def _cadence(campaign: dict[str, Any], rows: pl.DataFrame) -> list[Candidate]:
    cadence = float(campaign["cadence_posts_per_week"])
    everything = np.ones(rows.height, dtype=bool)
    out: list[Candidate] = []
    # At most halve the cadence in one change.
    for proposed_cadence in range(max(1, math.ceil(cadence / 2)), math.ceil(cadence)):
        out.append(
            Candidate(
                "cadence_posts_per_week",
                float(proposed_cadence),
                f"lower the cadence to {proposed_cadence} sponsored post(s) per creator and week",
                "all posts",
                everything,
                1.0,
                campaign | {"cadence_posts_per_week": float(proposed_cadence)},
                round(cadence - proposed_cadence),
            )
        )
    return out


def candidates(campaign: dict[str, Any], rows: pl.DataFrame) -> list[Candidate]:
    """Every change this campaign's own posts can speak to (evidence is checked later).

    ``rows``: the campaign's window, one row per creator with its attributes.
    """
    return [
        *_tiers(campaign, rows),
        *_engagement(campaign, rows),
        *_target_lists(campaign, rows),
        *_cadence(campaign, rows),
    ]


def pool_size(catalog: CreatorFeatures | None, campaign: dict[str, Any], target: str | None) -> int | None:
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
    matches = np.isin(values, targets(campaign, target))[codes[eligible]]
    return int(matches.sum())
