"""Offline evaluation of any weights on logged feedback (a FeedbackDataset's examples).

- **NDCG@5 and precision@5** on labeled recommendations. Each campaign is one query; its
  judged items are the distinct creators reviewers labeled for it, with gain = the share of
  their labels that said useful (graded, in [0, 1]); the weights rank those creators by their
  score as served. A creator counts as relevant for precision when at least half the labels
  said useful. trec_eval's rules (`trec_ranking`): ties by creator id descending, campaigns
  without a relevant creator score 0 and are counted, only positive gains count.
- **IPS and SNIPS** estimates of clicks, conversions and engagements per slate, had the weights
  served the logged requests (`off_policy.weighted`, formulas in `estimators`): per-position
  (``ips_*`` / ``snips_*``, the target's marginal Plackett-Luce probability of each creator at its
  rank over the logging policy's, unbiased under a position-based reward) and cascade
  (``cascade_ips_*`` / ``cascade_snips_*``, the product of the conditional ratios over ranks 1..r,
  unbiased for rewards that depend on the creators above). Conversions per slate grow with reach
  (a mega-creator's post brings more of everything), so the quality of what is recommended is
  also estimated as per-position SNIPS of the **yields**, outcomes per 1,000 impressions of each
  recommendation: what the checks compare.
- **Exposure Gini and catalog coverage** of the rankings: each request shows the weights'
  deterministic top ``slate_size`` of its campaign's pool that day; exposure counts over every
  creator eligible for any campaign (zeros included). **New-creator share**: the share of that
  exposure going to creators absent from the logged recommendations, the loop's openness to
  creators it never showed before.
- **Paired yields** (`paired_yields`): per logged recommendation, the per-position weights of two
  weight sets and the conversion yield, the input of the guards' bootstrap over slates.

Every figure comes with the number of records behind it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import FbloopConfig, ObjectiveConfig
from fbloop_assets.lib.scoring.features import FEATURES
from fbloop_assets.lib.weights.estimators import ips, snips
from fbloop_assets.lib.weights.metrics import coverage, gini, ndcg_at_k, precision_at_k
from fbloop_assets.lib.weights.off_policy import LoggingPolicy, scored, weighted

K = 5  # NDCG@5 and precision@5, as the spec asks
REWARDS = ("clicks", "conversions", "engagements")
YIELDS = {"clicks": "click", "conversions": "conversion", "engagements": "engagement"}
METRIC_NAMES = (
    "ndcg_at_5",
    "precision_at_5",
    "snips_objective_yield",
    "snips_conversion_yield",
    "snips_click_yield",
    "snips_engagement_yield",
    *(f"{e}{m}_{r}_per_slate" for r in REWARDS for e in ("", "cascade_") for m in ("ips", "snips")),
    "exposure_gini",
    "catalog_coverage",
    "new_creator_share",
)


def trec_ranking(runs: pl.DataFrame, k: int, relevant_at: float = 0.5) -> dict[str, Any]:
    """NDCG@k and P@k as trec_eval computes them, per query of ``runs`` (query, doc, gain, s).

    trec_eval's rules: each query ranks its documents by score descending, ties by document id
    *descending*; a document without a gain (null) is unjudged and gains 0; only positive gains
    count, in the DCG and in the ideal (from every judged document of the query); a query
    without a relevant document scores 0 and stays in the mean (counted in
    ``queries_without_relevant``). A document is relevant for P@k at gain >= ``relevant_at``.
    """
    ndcgs, precisions, without_relevant = [], [], 0
    for _, query in runs.sort("query").group_by("query", maintain_order=True):
        ranked = query.sort("s", "doc", descending=[True, True])
        gains = ranked["gain"].fill_null(0.0).to_numpy()
        judged = query["gain"].drop_nulls().to_numpy()
        value = ndcg_at_k(gains, judged, k)
        without_relevant += value is None
        ndcgs.append(value or 0.0)
        precisions.append(precision_at_k((gains >= relevant_at).astype(np.float64), k))
    return {
        f"ndcg_at_{k}": float(np.mean(ndcgs)) if ndcgs else None,
        f"precision_at_{k}": float(np.mean(precisions)) if precisions else None,
        "queries": len(ndcgs),
        "queries_without_relevant": without_relevant,
    }


def ranking_metrics(examples: pl.DataFrame, k: int) -> dict[str, Any]:
    """NDCG@k and P@k (`trec_ranking`) per campaign over labeled examples scored in column ``s``.

    Each campaign is a query, its documents the creators labeled for it, with gain = the share of
    their labels that said useful and the creator's mean score.
    """
    labeled = examples.filter(pl.col("n_labels") > 0)
    runs = labeled.group_by("campaign_id", "creator_id").agg(
        ((pl.col("label_useful") * pl.col("n_labels")).sum() / pl.col("n_labels").sum()).alias("gain"),
        pl.col("s").mean(),
    )
    runs = runs.rename({"campaign_id": "query", "creator_id": "doc"})
    return {**trec_ranking(runs, k), "labeled_records": labeled.height}


def with_features(examples: pl.DataFrame) -> pl.DataFrame:
    """The examples whose features are known (served from a pool the dataset could rebuild)."""
    return examples.filter(pl.col(FEATURES[0]).is_not_null())


def _yields(frame: pl.DataFrame, reward: str) -> np.ndarray:
    """``reward`` per 1,000 impressions of each recommendation (0 without impressions)."""
    impressions = frame["impressions"].to_numpy()
    outcomes = frame[reward].to_numpy()
    return np.where(impressions > 0, 1000.0 * outcomes / np.maximum(impressions, 1.0), 0.0)


def objective_yields(frame: pl.DataFrame, objective: ObjectiveConfig) -> np.ndarray:
    """The objective's value per 1,000 impressions of each recommendation (`objective.*_weight`)."""
    total = np.zeros(frame.height)
    for reward, weight in objective.outcome_weights().items():
        if weight > 0 and reward in frame.columns:
            total += weight * _yields(frame, reward)
    return total


def weighted_as_configured(
    examples: pl.DataFrame, pools: pl.DataFrame, config: FbloopConfig, policy: LoggingPolicy
) -> tuple[pl.DataFrame, dict[str, float]]:
    """`off_policy.weighted` with the temperature, clip and marginal samples of ``config``."""
    return weighted(
        examples,
        pools,
        config.serving.temperature,
        config.evaluation.ips_clip,
        config.evaluation.marginal_samples,
        policy,
    )


def off_policy_metrics(
    frame: pl.DataFrame, stderr: dict[str, float], objective: ObjectiveConfig | None = None
) -> dict[str, Any]:
    """IPS and SNIPS per slate of every outcome kind, per position and cascade, and the yields
    (with ``objective``, also ``snips_objective_yield``, what the gate compares)."""
    out: dict[str, Any] = {
        "ope_records": frame.height,
        "ope_slates": frame["request_id"].n_unique(),
        "ope_records_without_logging_policy": int(frame["w_position"].null_count()),
        "marginal_stderr": max(stderr.values(), default=0.0),
    }
    for prefix, column in (("", "w_position"), ("cascade_", "w_cascade")):
        part = frame.filter(pl.col(column).is_not_null())
        w, slates = part[column].to_numpy(), part["request_id"].n_unique()
        per_slate = part.height / slates if slates else 0.0
        for reward in (r for r in REWARDS if r in part.columns):
            r = part[reward].to_numpy()
            out[f"{prefix}ips_{reward}_per_slate"] = ips(w, r, slates)
            out[f"{prefix}snips_{reward}_per_slate"] = snips(w, r, per_slate) if slates else None
        if not prefix:
            for reward, name in ((r, n) for r, n in YIELDS.items() if r in part.columns):
                out[f"snips_{name}_yield"] = snips(w, _yields(part, reward)) if slates else None
            if objective is not None:
                out["snips_objective_yield"] = snips(w, objective_yields(part, objective)) if slates else None
            out["mean_importance_weight"] = float(w.mean()) if w.size else None
    return out


def paired_yields(
    candidate: dict[str, float],
    production: dict[str, float],
    examples: pl.DataFrame,
    pools: pl.DataFrame,
    config: FbloopConfig,
    policy: LoggingPolicy | None = None,
) -> pl.DataFrame:
    """Per logged recommendation: both weight sets' per-position weights and its objective yield.

    Columns ``request_id, w_candidate, w_production, yield`` (the objective per 1,000
    impressions), one row per recommendation `evaluate` estimates SNIPS on, so that
    ``Σ w·yield / Σ w`` of an arm is that arm's ``snips_objective_yield``. The guards bootstrap
    over its slates.
    """
    policy = policy or LoggingPolicy()
    rows = with_features(examples).with_row_index("_row")
    arms: dict[str, pl.DataFrame] = {}
    for arm, weights in (("candidate", candidate), ("production", production)):
        frame, _ = weighted_as_configured(scored(rows, weights), scored(pools, weights), config, policy)
        arms[arm] = frame.filter(pl.col("w_position").is_not_null()).select(
            "_row",
            "request_id",
            "impressions",
            *(r for r in REWARDS if r in frame.columns),
            pl.col("w_position").alias(f"w_{arm}"),
        )
    paired = arms["candidate"].join(arms["production"].select("_row", "w_production"), on="_row", how="inner")
    paired = paired.sort("request_id", "_row")
    return paired.select(
        "request_id",
        "w_candidate",
        "w_production",
        pl.Series("yield", objective_yields(paired, config.objective)),
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
    weights: dict[str, float],
    examples: pl.DataFrame,
    pools: pl.DataFrame,
    config: FbloopConfig,
    policy: LoggingPolicy | None = None,
) -> dict[str, Any]:
    """Every offline metric of ``weights`` on ``examples`` (pools: `dataset.serving_pools`).

    ``policy``: what the logged propensities mean and the weights that served them (without it,
    conditional logs have cascade estimates only).
    """
    policy = policy or LoggingPolicy()
    usable = with_features(examples)
    target, target_pools = scored(usable, weights), scored(pools, weights)
    frame, stderr = weighted_as_configured(target, target_pools, config, policy)
    return {
        "records": examples.height,
        "records_without_features": examples.height - usable.height,
        **ranking_metrics(target, K),
        **off_policy_metrics(frame, stderr, config.objective),
        **exposure_metrics(target, target_pools, config.serving.slate_size),
    }
