"""The doubly robust (DR) variant of the gate's per-position yield estimate, measured against SNIPS.

A reward model ``ŷ(creator, rank)`` (scikit-learn ridge regression of the objective's yield on φ and
the rank, fitted on the dataset's training split, weighted by impressions) gives a direct estimate
of what a policy would earn at each logged position: ``q_r = Σ_i P_target(i at r) ŷ(i, r)`` over
the pool, with the exact (or sampled) Plackett-Luce marginals of `estimators`. DR corrects it with
the importance-weighted residuals of the logged recommendations:

    V_DR = Σ_positions q_r / positions + Σ w (y - ŷ) / Σ w

With ``ŷ = 0`` this is SNIPS; a model that explains part of the yield shrinks the residuals, and
so the variance, without a bias as long as the marginals are right (the model only has to be
fixed before the held-out data are seen). Whether that tightens the `no_regression` interval is
an empirical question: `benchmarks/dr_interval.py` prints both intervals side by side, day by day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.bootstrap import resampled_totals
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.scoring.features import FEATURES
from fbloop_assets.lib.weights.evaluation import objective_yields, weighted_as_configured, with_features
from fbloop_assets.lib.weights.off_policy import POOL, LoggingPolicy, marginal_table, scored


@dataclass(frozen=True)
class YieldModel:
    """Ridge regression of the objective's yield on φ and one indicator per rank."""

    model: Any
    ranks: int

    @classmethod
    def fit(cls, train: pl.DataFrame, config: FbloopConfig, ranks: int) -> YieldModel:
        from sklearn.linear_model import Ridge  # imported only when fitting, as in training

        train = with_features(train)
        x = _design(train["rank"].to_numpy(), train.select(FEATURES).to_numpy(), ranks)
        model = Ridge(alpha=1.0)
        model.fit(
            x, objective_yields(train, config.objective), sample_weight=np.maximum(train["impressions"], 1)
        )
        return cls(model, ranks)

    def predict(self, rank: np.ndarray, phi: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(_design(rank, phi, self.ranks)), dtype=np.float64)


def _design(rank: np.ndarray, phi: np.ndarray, ranks: int) -> np.ndarray:
    onehot = np.zeros((rank.size, ranks))
    onehot[np.arange(rank.size), np.clip(rank, 1, ranks) - 1] = 1.0
    return np.hstack([phi, onehot])


def _direct(pools: pl.DataFrame, config: FbloopConfig, model: YieldModel) -> pl.DataFrame:
    """Per pool and rank, ``q = Σ_i P(i at rank) ŷ(i, rank)`` under the scores ``s`` of ``pools``."""
    k = model.ranks
    table, _ = marginal_table(pools, config.serving.temperature, k, config.evaluation.marginal_samples)
    phi = pools.select(*POOL, "creator_id", *FEATURES)
    table = table.join(phi, on=[*POOL, "creator_id"], how="inner")
    predicted = model.predict(table["rank"].to_numpy(), table.select(FEATURES).to_numpy())
    return (
        table.with_columns(pl.Series("q", predicted) * pl.col("marginal"))
        .group_by(*POOL, "rank")
        .agg(pl.col("q").sum())
    )


def dr_sums(
    candidate: dict[str, float],
    production: dict[str, float],
    holdout: pl.DataFrame,
    pools: pl.DataFrame,
    config: FbloopConfig,
    policy: LoggingPolicy,
    model: YieldModel,
) -> pl.DataFrame:
    """Per held-out slate, per arm: Σ q, Σ w (y - ŷ), Σ w, and its positions (``m``)."""
    rows = with_features(holdout).with_row_index("_row")
    rows = rows.with_columns(
        pl.Series("yhat", model.predict(rows["rank"].to_numpy(), rows.select(FEATURES).to_numpy())),
        pl.Series("y", objective_yields(rows, config.objective)),
    )
    arms = []
    for arm, weights in (("c", candidate), ("p", production)):
        frame, _ = weighted_as_configured(scored(rows, weights), scored(pools, weights), config, policy)
        frame = frame.filter(pl.col("w_position").is_not_null())
        direct = _direct(
            scored(pools.join(frame.select(POOL).unique(), on=POOL, how="semi"), weights),
            config,
            model,
        )
        frame = frame.join(direct, on=[*POOL, "rank"], how="left").with_columns(pl.col("q").fill_null(0.0))
        arms.append(
            frame.select(
                "_row",
                "request_id",
                pl.col("q").alias(f"q_{arm}"),
                (pl.col("w_position") * (pl.col("y") - pl.col("yhat"))).alias(f"r_{arm}"),
                pl.col("w_position").alias(f"w_{arm}"),
            )
        )
    paired = arms[0].join(arms[1].drop("request_id"), on="_row", how="inner")
    return (
        paired.group_by("request_id")
        .agg(pl.exclude("_row").sum(), pl.len().cast(pl.Float64).alias("m"))
        .sort("request_id")
    )


def dr_relative_interval(
    sums: pl.DataFrame, samples: int, confidence: float, seed: int = 0
) -> tuple[float, float, float] | None:
    """DR yield candidate / production - 1 with one-sided percentile bounds (bootstrap over slates)."""
    columns = ["q_c", "r_c", "w_c", "q_p", "r_p", "w_p", "m"]
    values = sums.select(columns).to_numpy().astype(np.float64)
    if not values.shape[0]:
        return None

    def relative(t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            c = t[:, 0] / t[:, 6] + t[:, 1] / t[:, 2]
            p = t[:, 3] / t[:, 6] + t[:, 4] / t[:, 5]
            return np.where(p > 0, c / p - 1.0, np.nan)

    estimate = float(relative(values.sum(axis=0, keepdims=True))[0])
    boot = relative(resampled_totals(values, samples, np.random.default_rng(seed)))
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(estimate) or not boot.size:
        return None
    lower, upper = np.quantile(boot, [1.0 - confidence, confidence])
    return estimate, float(lower), float(upper)
