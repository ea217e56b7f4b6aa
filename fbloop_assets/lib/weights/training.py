"""Candidate weights: fit a direction on a FeedbackDataset, then take a bounded step towards it.

The fit is one scikit-learn logistic regression over stacked evidence, sharing the feature
coefficients across four kinds of evidence, each with its own intercept:

- labels: y = the share of reviewers who judged the suggestion useful, weighted by confidence;
- conversions: conversions per click, for suggestions with clicks;
- clicks: clicks per impression; engagements: engagements per impression (capped at 1).

Rates enter as fractional outcomes (a row with y=1 weighted by the rate and a row with y=0
weighted by its complement), one unit of weight per suggestion, so a mega-creator's millions of
impressions count as one suggestion, not as a million. Each kind's total weight is its configured
share (labels and conversions more than raw engagement). Every suggestion is also weighted by
its inverse logged propensity, capped at ``propensity_clip`` and normalized to mean 1, so that
what the old scorer happened to show often does not dominate what is learned.

The fitted coefficients give a direction, not a scale: the scale of the scorer sets how greedy
Plackett-Luce serving is, so the direction is scaled to the production weights' L2 norm. The
candidate then moves from production towards it by at most ``max_step`` per weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import TrainingConfig
from fbloop_assets.lib.scoring.features import FEATURES, weight_vector

EVIDENCE = ("label", "conversion", "click", "engagement")

# The per-kind intercepts are columns of the design matrix, so the L2 penalty falls on them too.
# A rate far from 1/2 (clicks per impression are about 1%) needs an intercept near -4.6; penalized,
# the fit pushed every always-positive feature negative to stand in for it, and a click-only fit
# pointed away from relevance (true NDCG@5 0.15 for its direction against 0.72 for w0). A column
# of 10 instead of 1 divides the intercept's penalty by 100 (liblinear's ``intercept_scaling``),
# and centring φ leaves the features nothing of the intercept's job: the same click-only fit now
# points at relevance (direction 0.84, the step from w0 0.80; the ceiling is 0.88).
INTERCEPT_SCALING = 10.0


@dataclass(frozen=True)
class Fit:
    direction: dict[str, float]  # fitted coefficients, scaled to production's norm
    coefficients: dict[str, float]  # as fitted
    rows: dict[str, int]  # suggestions behind each kind of evidence


def _evidence(examples: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per kind of evidence: (example row indices, rate in [0, 1], per-row weight)."""
    impressions = examples["impressions"].to_numpy()
    clicks = examples["clicks"].to_numpy()
    labeled = examples["n_labels"].to_numpy() > 0
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    idx = np.flatnonzero(labeled)
    out["label"] = (
        idx,
        examples["label_useful"].to_numpy()[idx],
        examples["label_confidence"].fill_null(1.0).to_numpy()[idx],
    )
    idx = np.flatnonzero(clicks > 0)
    conv_rate = np.minimum(examples["conversions"].to_numpy()[idx] / clicks[idx], 1.0)
    out["conversion"] = (idx, conv_rate, np.ones(idx.size))
    idx = np.flatnonzero(impressions > 0)
    out["click"] = (idx, np.minimum(clicks[idx] / impressions[idx], 1.0), np.ones(idx.size))
    eng = np.minimum(examples["engagements"].to_numpy()[idx] / impressions[idx], 1.0)
    out["engagement"] = (idx, eng, np.ones(idx.size))
    return out


def evidence_shares(config: TrainingConfig) -> dict[str, float]:
    """Share of the fitting weight each kind of evidence carries, as configured."""
    return {
        "label": config.label_weight,
        "conversion": config.conversion_weight,
        "click": config.click_weight,
        "engagement": config.engagement_weight,
    }


def propensity_weights(propensity: np.ndarray, clip: float) -> np.ndarray:
    """``1 / max(p, 1/clip)``, normalized to mean 1."""
    w = 1.0 / np.maximum(propensity, 1.0 / clip)
    return w / w.mean() if w.size else w


def fit_direction(examples: pl.DataFrame, production: dict[str, float], config: TrainingConfig) -> Fit | None:
    """The direction the evidence points to, at production's scale; None without any evidence."""
    examples = examples.filter(pl.col(FEATURES[0]).is_not_null())
    shares = evidence_shares(config)
    # Centred, so that no feature can stand in for an intercept (see INTERCEPT_SCALING).
    phi = examples.select(FEATURES).to_numpy()
    if phi.shape[0]:
        phi = phi - phi.mean(axis=0)
    ipw = propensity_weights(examples["propensity"].to_numpy(), config.propensity_clip)
    # A kind that never happened (a click-only log has no conversion) says nothing about ranking:
    # its all-zero rates would only drag the fit towards scoring everything low.
    evidence = {
        k: v for k, v in _evidence(examples).items() if v[0].size and shares[k] > 0 and v[1].sum() > 0
    }
    if not evidence:
        return None
    total_share = sum(shares[k] for k in evidence)
    xs, ys, ws = [], [], []
    n = examples.height
    for j, (kind, (idx, rate, weight)) in enumerate(evidence.items()):
        base = weight * ipw[idx]
        base = base / base.sum() * n * shares[kind] / total_share
        onehot = np.zeros((idx.size, len(evidence)))
        onehot[:, j] = INTERCEPT_SCALING
        x = np.hstack([phi[idx], onehot])
        xs += [x, x]
        ys += [np.ones(idx.size), np.zeros(idx.size)]
        ws += [base * rate, base * (1.0 - rate)]
    from sklearn.linear_model import LogisticRegression  # 1.6 s to import: only when fitting

    x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
    keep = w > 0
    model = LogisticRegression(C=config.regularization_c, fit_intercept=False, max_iter=2000)
    model.fit(x[keep], y[keep], sample_weight=w[keep])
    coef = model.coef_[0][: len(FEATURES)]
    norm = float(np.linalg.norm(coef))
    scale = float(np.linalg.norm(weight_vector(production))) / norm if norm > 0 else 0.0
    return Fit(
        direction={f: float(c * scale) for f, c in zip(FEATURES, coef, strict=True)},
        coefficients={f: float(c) for f, c in zip(FEATURES, coef, strict=True)},
        rows={k: int(v[0].size) for k, v in evidence.items()},
    )


def bounded_step(production: dict[str, float], target: dict[str, float], max_step: float) -> dict[str, float]:
    """Move each weight from production towards target by at most ``max_step``."""
    return {
        f: production[f] + float(np.clip(target[f] - production[f], -max_step, max_step)) for f in FEATURES
    }


def candidate_weights(
    examples: pl.DataFrame, production: dict[str, float], config: TrainingConfig
) -> tuple[dict[str, float], dict[str, Any]] | None:
    """Candidate weights and a record of the fit, from the training share of ``examples``."""
    train = examples.filter(~pl.col("holdout"))
    fit = fit_direction(train, production, config)
    if fit is None:
        return None
    weights = bounded_step(production, fit.direction, config.max_step)
    record = {
        "method": "logistic regression over stacked evidence, propensity-weighted; bounded step",
        "train_records": train.height,
        "evidence_rows": fit.rows,
        "coefficients": {f: round(v, 6) for f, v in fit.coefficients.items()},
        "direction": {f: round(v, 6) for f, v in fit.direction.items()},
        "max_step": config.max_step,
        "evidence_shares": evidence_shares(config),
    }
    return weights, record
