"""How the labeling app puts numbers into words a reviewer reads: chances, slots, confidence, names.

- A chance (a propensity: how likely the scorer was to show this creator in this slot) reads as a
  percentage from 1% up ("23%") and as "1 in N" below it, N rounded to two significant digits
  ("1 in 4,300,000"); nobody reads 2.3e-07 or "probability 0.00".
- A slot reads as "slot 1 of the slate, the most prominent"; slots 1 to 3 are where most attention
  goes (the NDCG position weight falls to half by slot 3).
- A confidence is one of five levels; every page shows it by its words ("sure"), a value that is
  not a level (an imported label) by the nearest level's words and its value ("sure, 0.75").
- The queue's reasons are tags: a pending second opinion, high exposure (a top slot), an
  uncertain pick (a chance under ``UNCERTAIN_BELOW``).

Pure functions; no store, no HTTP.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import polars as pl

from fbloop_assets.lib.common.lake import Lake

CONFIDENCE_LEVELS = (
    (0.2, "1", "a guess"),
    (0.4, "2", "unsure"),
    (0.6, "3", "fairly sure"),
    (0.8, "4", "sure"),
    (1.0, "5", "certain"),
)
PROMINENT_SLOTS = 3
UNCERTAIN_BELOW = 0.3


def chance(p: float) -> str:
    """``p`` (0..1) as a reader says it: "23%", "1 in 4,300,000", "almost certain"."""
    if p >= 0.995:
        return "over 99%"
    if p >= 0.01:
        return f"{p * 100:.0f}%"
    if p <= 0:
        return "never"
    n = 1 / p
    digits = math.floor(math.log10(n)) - 1  # two significant digits
    return f"1 in {round(n, -digits):,.0f}"


def slot(rank: int) -> str:
    """Where in the slate a suggestion was shown, and what that means for attention."""
    if rank == 1:
        return "slot 1 of the slate, the most prominent"
    if rank <= PROMINENT_SLOTS:
        return f"slot {rank} of the slate, near the top where most attention goes"
    return f"slot {rank} of the slate, below the top {PROMINENT_SLOTS}"


def priority_sentence(item: dict[str, Any]) -> str:
    """Why an item matters, in one sentence: how prominent it was and how likely the scorer was to
    show it there."""
    likely = chance(float(item["propensity"]))
    shown = f"Shown in {slot(int(item['rank']))}"
    if float(item["propensity"]) < UNCERTAIN_BELOW:
        return f"{shown}; the scorer would have put this creator there with a chance of only {likely}."
    return f"{shown}; the scorer puts this creator there with a chance of {likely}."


def reasons(item: dict[str, Any]) -> list[str]:
    """Short tags for the queue's "why" column, most important first."""
    tags = []
    if item.get("second_opinion"):
        tags.append("second opinion")
    if int(item["rank"]) <= PROMINENT_SLOTS:
        tags.append(f"high exposure (slot {item['rank']})")
    if float(item["propensity"]) < UNCERTAIN_BELOW:
        tags.append(f"uncertain pick ({chance(float(item['propensity']))})")
    return tags or ["first label"]


def confidence(value: float) -> str:
    """A confidence in the words of its level; a value between levels also shows itself."""
    nearest = min(CONFIDENCE_LEVELS, key=lambda level: abs(level[0] - value))
    if math.isclose(nearest[0], value, abs_tol=1e-9):
        return nearest[2]
    return f"{nearest[2]}, {value:.2f}"


def _latest(lake: Lake, asset: str, key: str) -> dict[str, dict[str, Any]]:
    found = lake.latest_partition(asset, date.max)
    if found is None:
        return {}
    return {r[key]: r for r in pl.read_parquet(lake.table_path(asset, found)).iter_rows(named=True)}


def campaign_name(row: dict[str, Any] | None, campaign_id: str) -> str:
    return f"{row['brand']} ({row['objective']}, {campaign_id})" if row else campaign_id


def creator_name(row: dict[str, Any] | None, creator_id: str) -> str:
    return f"{creator_id} ({row['niche']} on {row['platform']})" if row else creator_id


def with_names(lake: Lake, served: pl.DataFrame, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (with ``recommendation_id``) with the campaign and creator names of what was served."""
    wanted = {r["recommendation_id"] for r in rows}
    which = {
        r["recommendation_id"]: r
        for r in served.filter(pl.col("recommendation_id").is_in(wanted))
        .select("recommendation_id", "campaign_id", "creator_id")
        .iter_rows(named=True)
    }
    campaigns, creators = _latest(lake, "campaigns", "campaign_id"), _latest(lake, "creators", "creator_id")
    named = []
    for r in rows:
        rec = which.get(r["recommendation_id"])
        if rec is None:
            named.append(r | {"campaign": "–", "creator": "–"})
            continue
        named.append(
            r
            | {
                "campaign": campaign_name(campaigns.get(rec["campaign_id"]), rec["campaign_id"]),
                "creator": creator_name(creators.get(rec["creator_id"]), rec["creator_id"]),
            }
        )
    return named
