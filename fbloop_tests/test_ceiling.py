"""The ceiling: the best linear weights on φ fitted to the hidden truth, and their true NDCG@5."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np

from fbloop_assets.lib.scoring.features import FEATURES, weight_vector
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.simulate import SimParams, Simulation
from fbloop_assets.simulate.truth import ceiling, pools_ndcg, true_ndcg, true_pools

DAY = date(2026, 1, 1)


def test_the_ceiling_beats_the_hand_set_weights_and_random_directions(tmp_path: Path) -> None:
    sim = Simulation(tmp_path, 3, DAY, replace(SimParams(), n_creators=600, n_campaigns=8))
    weights, value = ceiling(sim.world, None, DAY)
    assert set(weights) == set(FEATURES)
    assert value == true_ndcg(sim.world, weights, None, DAY)  # reported for the weights it returns
    assert value > true_ndcg(sim.world, INITIAL.weights, None, DAY)
    pools = true_pools(sim.world, None, DAY)
    rng = np.random.default_rng(0)
    assert all(value >= pools_ndcg(pools, rng.normal(size=len(FEATURES))) for _ in range(30))
    assert pools_ndcg(pools, weight_vector(INITIAL.weights)) == true_ndcg(
        sim.world, INITIAL.weights, None, DAY
    )
