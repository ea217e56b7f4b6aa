"""Weights stage: candidate weights, their offline evaluation, and the gated production pointer."""

import dagster as dg

from fbloop_assets.defs.weights.assets import candidate_weights, weights_evaluation
from fbloop_assets.defs.weights.promotion import canary_review, production_weights

defs = dg.Definitions(assets=[candidate_weights, weights_evaluation, canary_review, production_weights])
