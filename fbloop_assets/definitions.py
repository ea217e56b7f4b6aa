"""fbloop's Dagster definitions: every stage's `defs`, merged, with the shared resource and executor."""

import dagster as dg

from fbloop_assets.defs import dataset, feedback, ingest, loop, tuning, weights
from fbloop_assets.defs.executors import fbloop_executor
from fbloop_assets.defs.resources import FbloopResource

defs = dg.Definitions.merge(
    ingest.defs,
    feedback.defs,
    dataset.defs,
    weights.defs,
    tuning.defs,
    loop.defs,
    dg.Definitions(resources={"fbloop": FbloopResource()}, executor=fbloop_executor),
)
