"""Offline evaluation of any weights on logged feedback (a FeedbackDataset's examples).

- **NDCG@5 and precision@5** on labeled recommendations. Each campaign is one query; its
  judged items are the distinct creators reviewers labeled for it, with gain = the share of
  their labels that said useful (graded, in [0, 1]); the weights rank those creators by their
  score as served. A creator counts as relevant for precision when at least half the labels
  said useful. Campaigns without any relevant creator have no NDCG and are counted, not averaged.
- **IPS and SNIPS** estimates of conversions and engagements per slate, had the weights served
  the logged requests. The target probability of each logged (rank, creator) is the
  Plackett-Luce probability that the weights' policy (same temperature, scores standardized over
  the campaign's pool as `serve` does) picks that creator at that rank given the creators logged
  above it; the importance weight is that over the logged
  propensity, capped at ``ips_clip``. IPS divides the weighted rewards by the number of slates;
  SNIPS by the sum of the weights (times the mean slate length), which removes most of the
  variance IPS has when weights are large, at the price of a small bias. Conversions per slate
  grow with reach (a mega-creator's post brings more of everything), so the quality of what is
  recommended is also estimated as SNIPS of the **conversion yield**, conversions per 1,000
  impressions of each recommendation: what the checks compare.
- **Exposure Gini and catalog coverage** of the rankings: each request shows the weights'
  deterministic top ``slate_size`` of its campaign's pool that day; exposure counts over every
  creator eligible for any campaign (zeros included). **New-creator share**: the share of that
  exposure going to creators absent from the logged recommendations, the loop's openness to
  creators it never showed before.
- **Paired yields** (`paired_yields`): per logged recommendation, the importance weights of two
  weight sets and the conversion yield, the input of the guards' bootstrap over slates.

Every figure comes with the number of records behind it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.scoring.features import FEATURES, weight_vector
from fbloop_assets.lib.weights.metrics import coverage, gini, ndcg_at_k, precision_at_k

K = 5  # NDCG@5 and precision@5, as the spec asks
METRIC_NAMES = (
    "ndcg_at_5",
    "precision_at_5",
    "snips_conversion_yield",
    "snips_conversions_per_slate",
    "ips_conversions_per_slate",
    "snips_engagements_per_slate",
    "ips_engagements_per_slate",
    "exposure_gini",
    "catalog_coverage",
    "new_creator_share",
)


def _scored(frame: pl.DataFrame, weights: dict[str, float]) -> pl.DataFrame:
    return frame.with_columns(pl.Series("s", frame.select(FEATURES).to_numpy() @ weight_vector(weights)))


def ranking_metrics(examples: pl.DataFrame, k: int) -> dict[str, Any]:
    """NDCG@k and P@k per campaign over labeled examples scored in column ``s``."""
    labeled = examples.filter(pl.col("n_labels") > 0)
    per_creator = labeled.group_by("campaign_id", "creator_id").agg(
        ((pl.col("label_useful") * pl.col("n_labels")).sum() / pl.col("n_labels").sum()).alias("gain"),
        pl.col("s").mean(),
    )
    ndcgs, precisions, without_relevant = [], [], 0
    for _, query in per_creator.sort("campaign_id", "creator_id").group_by(
        "campaign_id", maintain_order=True
    ):
        ranked = query.sort("s", descending=True, maintain_order=True)
        gains = ranked["gain"].to_numpy()
        value = ndcg_at_k(gains, gains, k)
        if value is None:
            without_relevant += 1
            continue
        ndcgs.append(value)
        precisions.append(precision_at_k((gains >= 0.5).astype(np.float64), k))
    return {
        f"ndcg_at_{k}": float(np.mean(ndcgs)) if ndcgs else None,
        f"precision_at_{k}": float(np.mean(precisions)) if precisions else None,
        "labeled_records": labeled.height,
        "queries": len(ndcgs),
        "queries_without_relevant": without_relevant,
    }


def _pool_stats(pools: pl.DataFrame, temperature: float) -> pl.DataFrame:
    """Per (serving day, campaign) pool: the score spread and log Σ exp(logit), as `serve` used them."""
    logit = pl.col("s") / pl.col("spread") / temperature
    return (
        pools.with_columns(pl.col("s").std(ddof=0).over("serving_day", "campaign_id").alias("spread"))
        .with_columns(pl.when(pl.col("spread") > 0).then(pl.col("spread")).otherwise(1.0).alias("spread"))
        .group_by("serving_day", "campaign_id")
        .agg(
            pl.col("spread").first(),
            logit.max().alias("max_logit"),
            (logit - logit.max()).exp().sum().log().alias("log_z_shift"),
        )
    )


def _usable(examples: pl.DataFrame) -> pl.DataFrame:
    """The examples whose features are known (served from a pool the dataset could rebuild)."""
    return examples.filter(pl.col(FEATURES[0]).is_not_null())


def _importance_weights(
    examples: pl.DataFrame, pools: pl.DataFrame, temperature: float, clip: float
) -> tuple[pl.DataFrame, np.ndarray]:
    """The examples with a pool, sorted by request and rank, and their capped importance weights.

    ``s`` must be scored on both frames. The weight of each logged (rank, creator) is its
    Plackett-Luce target probability given the creators logged above it, over the logged
    propensity, capped at ``clip``. The one place this formula lives.
    """
    stats = _pool_stats(pools, temperature)
    logit = pl.col("s") / pl.col("spread") / temperature
    frame = (
        examples.join(stats, on=["serving_day", "campaign_id"], how="inner")
        .with_columns((logit - pl.col("max_logit") - pl.col("log_z_shift")).exp().alias("mass"))
        .sort("request_id", "rank")
        .with_columns((pl.col("mass").cum_sum().over("request_id") - pl.col("mass")).alias("above"))
        .with_columns(
            (pl.col("mass") / (1.0 - pl.col("above")).clip(lower_bound=pl.col("mass")))
            .clip(1e-300, 1.0)
            .alias("target")
        )
    )
    w = np.minimum(frame["target"].to_numpy() / frame["propensity"].to_numpy(), clip)
    return frame, w


def _conversion_yields(frame: pl.DataFrame) -> np.ndarray:
    """Conversions per 1,000 impressions of each recommendation (0 without impressions)."""
    impressions = frame["impressions"].to_numpy()
    conversions = frame["conversions"].to_numpy()
    return np.where(impressions > 0, 1000.0 * conversions / np.maximum(impressions, 1.0), 0.0)


def off_policy_metrics(
    examples: pl.DataFrame, pools: pl.DataFrame, temperature: float, clip: float
) -> dict[str, Any]:
    """IPS and SNIPS of conversions and engagements per slate; ``s`` scored on both frames."""
    frame, w = _importance_weights(examples, pools, temperature, clip)
    slates = frame["request_id"].n_unique()
    out: dict[str, Any] = {"ope_records": frame.height, "ope_slates": slates}
    if not frame.height:
        for reward in ("conversions", "engagements"):
            out[f"ips_{reward}_per_slate"] = out[f"snips_{reward}_per_slate"] = None
        out["snips_conversion_yield"] = None
        return out
    per_slate = frame.height / slates
    for reward in ("conversions", "engagements"):
        r = frame[reward].to_numpy()
        out[f"ips_{reward}_per_slate"] = float(np.sum(w * r) / slates)
        out[f"snips_{reward}_per_slate"] = (
            float(np.sum(w * r) / np.sum(w) * per_slate) if w.sum() > 0 else None
        )
    yields = _conversion_yields(frame)
    out["snips_conversion_yield"] = float(np.sum(w * yields) / np.sum(w)) if w.sum() > 0 else None
    out["mean_importance_weight"] = float(w.mean())
    out["clipped_share"] = float(np.mean(frame["target"].to_numpy() / frame["propensity"].to_numpy() > clip))
    return out


def paired_yields(
    candidate: dict[str, float],
    production: dict[str, float],
    examples: pl.DataFrame,
    pools: pl.DataFrame,
    config: FbloopConfig,
) -> pl.DataFrame:
    """Per logged recommendation: both weight sets' importance weights and its conversion yield.

    Columns ``request_id, w_candidate, w_production, yield`` (conversions per 1,000 impressions),
    one row per recommendation `evaluate` estimates SNIPS on, so that ``Σ w·yield / Σ w`` of an
    arm is that arm's ``snips_conversion_yield``. The guards bootstrap over its slates.
    """
    usable = _usable(examples).with_row_index("_row")
    arms: dict[str, pl.DataFrame] = {}
    for arm, weights in (("candidate", candidate), ("production", production)):
        frame, w = _importance_weights(
            _scored(usable, weights),
            _scored(pools, weights),
            config.serving.temperature,
            config.evaluation.ips_clip,
        )
        arms[arm] = frame.select("_row", "request_id", "impressions", "conversions").with_columns(
            pl.Series(f"w_{arm}", w)
        )
    paired = arms["candidate"].join(arms["production"].select("_row", "w_production"), on="_row", how="inner")
    return paired.select(
        "request_id", "w_candidate", "w_production", pl.Series("yield", _conversion_yields(paired))
    )


def exposure_metrics(examples: pl.DataFrame, pools: pl.DataFrame, slate_size: int) -> dict[str, Any]:
    """Gini, coverage and new-creator share of deterministic top-``slate_size`` rankings.

    One ranking per logged request. New creators are those not among ``examples["creator_id"]``
    (the logged recommendations); without that column, or without exposure, the share is None.
    """
    requests = examples.group_by("serving_day", "campaign_id").agg(pl.col("request_id").n_unique().alias("n"))
    top = (
        pools.join(requests, on=["serving_day", "campaign_id"], how="inner")
        .sort("s", "creator_id", descending=[True, False])
        .group_by("serving_day", "campaign_id")
        .head(slate_size)
    )
    exposure = top.group_by("creator_id").agg(pl.col("n").sum())
    catalog = pools["creator_id"].n_unique()
    counts = np.concatenate([exposure["n"].to_numpy(), np.zeros(max(catalog - exposure.height, 0))])
    total = float(exposure["n"].sum()) if exposure.height else 0.0
    new_creator_share = None
    if "creator_id" in examples.columns and total > 0:
        never_logged = exposure.join(examples.select("creator_id").unique(), on="creator_id", how="anti")
        new_creator_share = float(never_logged["n"].sum()) / total
    return {
        "exposure_gini": gini(counts) if catalog else None,
        "catalog_coverage": coverage(exposure["creator_id"].to_list(), catalog) if catalog else None,
        "new_creator_share": new_creator_share,
        "catalog_size": catalog,
        "ranked_requests": int(requests["n"].sum()) if requests.height else 0,
    }


def evaluate(
    weights: dict[str, float], examples: pl.DataFrame, pools: pl.DataFrame, config: FbloopConfig
) -> dict[str, Any]:
    """Every offline metric of ``weights`` on ``examples`` (pools: `dataset.serving_pools`)."""
    usable = _usable(examples)
    scored, scored_pools = _scored(usable, weights), _scored(pools, weights)
    ranking = ranking_metrics(scored, K)
    return {
        "records": examples.height,
        "records_without_features": examples.height - usable.height,
        **ranking,
        **off_policy_metrics(scored, scored_pools, config.serving.temperature, config.evaluation.ips_clip),
        **exposure_metrics(scored, scored_pools, config.serving.slate_size),
    }
