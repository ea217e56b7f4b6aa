"""How good weights truly are in the simulated world: NDCG@5 against the hidden relevance.

For every campaign active on a day, the weights rank its whole eligible pool (with the creator
performance known then); the gain of a creator is its true relevance for the campaign. Only the
simulation can report this; the loop itself never sees the truth.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from fbloop_assets.lib.scoring.features import FEATURES, CreatorFeatures, weight_vector
from fbloop_assets.lib.weights.metrics import ndcg_at_k
from fbloop_assets.simulate.world import World

Pool = tuple[np.ndarray, np.ndarray]  # φ of a campaign's eligible creators, their true relevance


def true_pools(world: World, performance: pl.DataFrame | None, day: date) -> list[Pool]:
    """Per campaign active on ``day``: φ of its eligible pool and each creator's true relevance."""
    catalog = CreatorFeatures.build(world.creators, performance)
    active = world.campaigns.filter((pl.col("start_date") <= day) & (pl.col("end_date") >= day))
    relevance = {
        str(c): dict(zip(g["creator_id"].to_list(), g["relevance"].to_list(), strict=True))
        for (c,), g in world.pairs.group_by("campaign_id")
    }
    pools = []
    for campaign in active.iter_rows(named=True):
        eligible, phi = catalog.pool(campaign)
        if eligible.size == 0:
            continue
        truth = relevance[campaign["campaign_id"]]
        pools.append((phi, np.array([truth[c] for c in catalog.creator_id[eligible]])))
    return pools


def pools_ndcg(pools: list[Pool], vector: np.ndarray, k: int = 5) -> float:
    """Mean NDCG@k over ``pools`` of the deterministic ranking by ``φ · vector``."""
    values = []
    for phi, gains in pools:
        value = ndcg_at_k(gains[np.argsort(-(phi @ vector), kind="stable")], gains, k)
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else float("nan")


def true_ndcg(
    world: World, weights: dict[str, float], performance: pl.DataFrame | None, day: date, k: int = 5
) -> float:
    """Mean NDCG@k over the campaigns active on ``day`` of the weights' deterministic ranking."""
    return pools_ndcg(true_pools(world, performance, day), weight_vector(weights), k)


def ceiling(
    world: World, performance: pl.DataFrame | None, day: date, k: int = 5, rounds: int = 3
) -> tuple[dict[str, float], float]:
    """The best linear weights on φ the simulation can find with the hidden truth, and their NDCG@k.

    Start: least squares of the true relevance on φ, both centred per campaign (a ranking does
    not see a campaign's offset). Then a deterministic coordinate search on the true NDCG@k
    itself: per round, each weight moved by ± a step (the step halves every round), kept when
    NDCG@k rises. What no loop can exceed with this scorer, up to the search's reach: the
    loop's distance to it is what better learning could still win.
    """
    pools = true_pools(world, performance, day)
    if not pools:
        return dict.fromkeys(FEATURES, 0.0), float("nan")
    x = np.vstack([phi - phi.mean(axis=0) for phi, _ in pools])
    y = np.concatenate([g - g.mean() for _, g in pools])
    vector = np.linalg.lstsq(x, y, rcond=None)[0]
    vector = vector / (np.linalg.norm(vector) or 1.0)
    best = pools_ndcg(pools, vector, k)
    step = 0.5
    for _ in range(rounds):
        for i in range(vector.size):
            for sign in (1.0, -1.0):
                trial = vector.copy()
                trial[i] += sign * step
                value = pools_ndcg(pools, trial, k)
                if value > best:
                    vector, best = trial, value
        step /= 2
    return {f: float(v) for f, v in zip(FEATURES, vector, strict=True)}, best
