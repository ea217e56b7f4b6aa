"""A synthetic influencer world that delivers files into the landing zone (`fbloop simulate`).

Deterministic per seed. Its parameters live in `params` and are documented, with their sources,
in docs/simulator.md. The pipeline never imports this package; only tests, benchmarks and the
demo do, and only evaluation reports may read the truth it writes under ``<data>/simulation/``.
"""

from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.run import Simulation, simulate, simulation_dir

__all__ = ["SimParams", "Simulation", "simulate", "simulation_dir"]
