"""How good weights truly are in the simulated world: NDCG@5 against the hidden relevance.

For every campaign active on a day, the weights rank its whole eligible pool (with the creator
performance known then); the gain of a creator is its true relevance for the campaign. Only the
simulation can report this; the loop itself never sees the truth.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from fbloop_assets.lib.scoring.features import CreatorFeatures, weight_vector
from fbloop_assets.lib.weights.metrics import ndcg_at_k
from fbloop_assets.simulate.world import World


def true_ndcg(
    world: World, weights: dict[str, float], performance: pl.DataFrame | None, day: date, k: int = 5
) -> float:
    """Mean NDCG@k over the campaigns active on ``day`` of the weights' deterministic ranking."""
    catalog = CreatorFeatures.build(world.creators, performance)
    vector = weight_vector(weights)
    active = world.campaigns.filter((pl.col("start_date") <= day) & (pl.col("end_date") >= day))
    relevance = {
        str(c): dict(zip(g["creator_id"].to_list(), g["relevance"].to_list(), strict=True))
        for (c,), g in world.pairs.group_by("campaign_id")
    }
    values = []
    for campaign in active.iter_rows(named=True):
        eligible, phi = catalog.pool(campaign)
        if eligible.size == 0:
            continue
        truth = relevance[campaign["campaign_id"]]
        gains = np.array([truth[c] for c in catalog.creator_id[eligible]])
        order = np.argsort(-(phi @ vector), kind="stable")
        value = ndcg_at_k(gains[order], gains, k)
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else float("nan")
