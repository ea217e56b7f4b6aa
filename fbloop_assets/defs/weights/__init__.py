"""Weights stage: candidate weights, their offline evaluation, and the gated production pointer."""

import dagster as dg

from fbloop_assets.defs.weights.assets import (
    canary_review,
    candidate_weights,
    production_weights,
    weights_evaluation,
)

defs = dg.Definitions(assets=[candidate_weights, weights_evaluation, canary_review, production_weights])
