"""The review queue: which served recommendations a reviewer should label next, and their cards.

Candidates are the recommendations served on the latest ``queue_days`` serving days. A reviewer
never sees an item they have labeled (and not undone). An item with an active label from anyone
leaves the queue, except the stable share ``double_label_share`` (a hash of the recommendation
id) that is routed to a second reviewer, so that agreement can be measured; those come first
once one reviewer has labeled them, so that pairs complete.

Among the rest, labels are most useful where the ranking is most exposed and least certain:

- exposure: the position weight ``1 / log2(rank + 1)`` (what NDCG counts; rank 1 is seen most);
- uncertainty: ``1 - propensity``, the chance the serving policy would *not* have put this creator
  at this rank: a low-probability pick is where the scorer was least sure.

``priority = (exposure + uncertainty) / 2`` (+1 for a pending second opinion). Ties break by
serving time, newest first, then id. Pure functions over frames; no store and no HTTP here.
"""

from __future__ import annotations

import zlib
from datetime import date
from typing import Any

import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.wording import priority_sentence, reasons

OUTCOME_TYPES = ("impression", "engagement", "click", "conversion")


def double_routed(ids: pl.Series, share: float) -> pl.Series:
    """Whether each recommendation is routed to two reviewers (stable CRC-32, not Python's hash)."""
    return pl.Series(
        "double", [zlib.crc32(f"double:{r}".encode()) % 10_000 < round(share * 10_000) for r in ids.to_list()]
    )


def build_queue(
    served: pl.DataFrame,
    labels: pl.DataFrame,
    reviewer_id: str,
    days: list[date],
    double_label_share: float,
    limit: int,
) -> pl.DataFrame:
    """The reviewer's next ``limit`` items, highest priority first.

    ``served``: served recommendations with ``serving_day``; ``labels``: active labels
    (recommendation_id, reviewer_id).
    """
    candidates = served.filter(pl.col("serving_day").is_in(days))
    candidates = candidates.with_columns(double_routed(candidates["recommendation_id"], double_label_share))
    per_item = labels.group_by("recommendation_id").agg(
        pl.col("reviewer_id").n_unique().alias("labels_so_far"),
        (pl.col("reviewer_id") == reviewer_id).any().alias("mine"),
    )
    frame = candidates.join(per_item, on="recommendation_id", how="left").with_columns(
        pl.col("labels_so_far").fill_null(0), pl.col("mine").fill_null(False)
    )
    wanted = ~pl.col("mine") & (
        (pl.col("labels_so_far") == 0) | (pl.col("double") & (pl.col("labels_so_far") == 1))
    )
    exposure = 1.0 / (pl.col("rank").cast(pl.Float64) + 1.0).log(2)
    uncertainty = 1.0 - pl.col("propensity")
    second_opinion = pl.col("double") & (pl.col("labels_so_far") == 1)
    return (
        frame.filter(wanted)
        .with_columns(
            exposure.alias("exposure"),
            uncertainty.alias("uncertainty"),
            second_opinion.alias("second_opinion"),
        )
        .with_columns(
            (
                (pl.col("exposure") + pl.col("uncertainty")) / 2 + pl.col("second_opinion").cast(pl.Float64)
            ).alias("priority")
        )
        .sort(["priority", "served_at", "recommendation_id"], descending=[True, True, False])
        .head(limit)
    )


def _snapshot_row(lake: Lake, asset: str, key: str, value: str, day: date) -> dict[str, Any] | None:
    found = lake.latest_partition(asset, day)
    if found is None:
        return None
    rows = pl.scan_parquet(lake.table_path(asset, found)).filter(pl.col(key) == value).head(1).collect()
    return rows.row(0, named=True) if rows.height else None


def item_card(lake: Lake, item: dict[str, Any], up_to: date | None = None) -> dict[str, Any]:
    """What a reviewer needs to judge ``item``: campaign brief, creator card, outcomes so far."""
    day: date = item["serving_day"]
    campaign = _snapshot_row(lake, "campaigns", "campaign_id", item["campaign_id"], day)
    creator = _snapshot_row(lake, "creators", "creator_id", item["creator_id"], day)
    folder = lake.root / "warehouse" / "normalized_feedback"
    paths = sorted(
        p
        for p in (folder.glob("*.parquet") if folder.is_dir() else [])
        if date.fromisoformat(p.stem) >= day and (up_to is None or date.fromisoformat(p.stem) <= up_to)
    )
    outcomes = {t: 0.0 for t in OUTCOME_TYPES}
    if paths:
        found = (
            pl.scan_parquet(paths)
            .filter(
                (pl.col("recommendation_id") == item["recommendation_id"]) & (pl.col("kind") == "outcome")
            )
            .unique("feedback_id")
            .group_by("event_type")
            .agg(pl.col("value").sum())
            .collect()
        )
        outcomes |= dict(found.iter_rows())
    return {
        "campaign": campaign,
        "creator": creator,
        "outcomes": outcomes,
        "outcome_days": [p.stem for p in paths],
        "why": reasons(item),
        "priority": priority_sentence(item),
    }
