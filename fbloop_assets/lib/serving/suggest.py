"""Suggestions: rank a campaign's eligible creators by ``w · φ``, draw slates, log what was served.

The same code serves `fbloop suggest`, the closed-loop demo and the simulator's own traffic:

- `serve` scores a campaign's pool of the day's `scoring.context.ScoringContext` with a weights
  version and draws one Plackett-Luce slate per request over the pool's standardized scores (see
  `scoring.policy`), so every logged rank carries its propensity; rows follow the serving log's
  contract.
- `Arms` and `serve_arms`: while a canary runs, a share of requests (a stable hash of the request
  id) is served with the canary's weights; every logged slate names the version that served it.
- `log_served` writes them into ``landing/recommendations/<day>/``, the folder the next
  `raw_recommendations` partition reads: that is the loop.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from fbloop_assets.lib.common.lake import Lake, atomic_path
from fbloop_assets.lib.ingest.landing import typed_schema
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.scoring.policy import canary_arm, plackett_luce_slates, standardized
from fbloop_assets.lib.weights.registry import Registry, WeightsVersion

SERVED_SCHEMA = pl.Schema(typed_schema("recommendations"))


class NoEligibleCreator(ValueError):
    """A campaign none of whose creators its target filters admit."""


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:20]}"


def serve(
    context: ScoringContext,
    weights: WeightsVersion,
    requests: pl.DataFrame,
    k: int,
    temperature: float,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """One slate of up to ``k`` creators per request (request_id, campaign_id, served_at).

    Recommendation ids are ``rec-<request id without 'req-'>-<rank>``. Rows follow the serving
    log's landing contract, in request and rank order. Campaigns are drawn in order of first
    appearance; the rows are assembled in numpy and become one frame at the end, so a single
    request (the service API's case) costs a few hundred microseconds besides its draw.
    """
    campaigns = requests["campaign_id"].to_numpy()
    positions, creators, ranks, scores, propensities = [], [], [], [], []
    for campaign_id in dict.fromkeys(campaigns.tolist()):
        rows = np.flatnonzero(campaigns == campaign_id)
        ids, _, score = context.scored_pool(str(campaign_id), weights.weights)
        if ids.size == 0:
            raise NoEligibleCreator(f"campaign {campaign_id!r} has no eligible creator")
        chosen, propensity = plackett_luce_slates(standardized(score), rows.size, k, temperature, rng)
        width = chosen.shape[1]
        positions.append(np.repeat(rows, width))
        creators.append(ids[chosen.ravel()])
        ranks.append(np.tile(np.arange(1, width + 1), rows.size))
        scores.append(np.round(score[chosen.ravel()], 6))
        propensities.append(propensity.ravel())
    if not positions:
        return pl.DataFrame(schema=SERVED_SCHEMA)
    # request order, ranks in order within a request (each request's rows are contiguous)
    position = np.concatenate(positions)
    order = np.argsort(position, kind="stable")
    at = pl.Series(position[order])
    rank = np.concatenate(ranks)[order]
    request_ids = requests["request_id"].gather(at)
    columns = {
        "recommendation_id": [
            f"rec-{r.removeprefix('req-')}-{n:02d}" for r, n in zip(request_ids, rank.tolist(), strict=True)
        ],
        "request_id": request_ids,
        "campaign_id": requests["campaign_id"].gather(at),
        "creator_id": np.concatenate(creators)[order],
        "rank": rank,
        "score": np.concatenate(scores)[order],
        "propensity": np.concatenate(propensities)[order],
        "weights_version": [weights.version] * rank.size,
        "served_at": requests["served_at"].cast(pl.Datetime("us", "UTC")).gather(at),
    }
    return pl.DataFrame(columns).select(SERVED_SCHEMA.names()).cast(SERVED_SCHEMA)


@dataclass(frozen=True)
class Arms:
    """The weights that serve: production, and the canary with its share of requests, if one runs."""

    production: WeightsVersion
    canary: WeightsVersion | None = None
    share: float = 0.0

    @classmethod
    def current(cls, registry: Registry, share: float) -> Arms:
        """What serves now, from the registry's aliases."""
        production = registry.production()
        canary = registry.current("canary")
        if canary is None or canary == production.version or share <= 0:
            return cls(production)
        return cls(production, registry.load(canary), share)

    def versions(self) -> dict[str, str]:
        served = {"production": self.production.version}
        if self.canary is not None:
            served["canary"] = self.canary.version
        return served


def serve_arms(
    context: ScoringContext,
    arms: Arms,
    requests: pl.DataFrame,
    k: int,
    temperature: float,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """`serve`, with each request routed to production or the canary (`serving.canary_arm`)."""
    if arms.canary is None:
        return serve(context, arms.production, requests, k, temperature, rng)
    to_canary = pl.Series(canary_arm(requests["request_id"].to_list(), arms.share))
    parts = [
        serve(context, weights, requests.filter(mask), k, temperature, rng)
        for weights, mask in ((arms.production, ~to_canary), (arms.canary, to_canary))
    ]
    if not parts[0].height or not parts[1].height:  # one arm served every request (one request)
        return parts[1] if parts[1].height else parts[0]
    order = requests.select("request_id").with_row_index("_order")
    return pl.concat(parts).join(order, on="request_id").sort("_order", "rank").drop("_order")


def log_served(lake: Lake, served: pl.DataFrame, name: str) -> list[Path]:
    """Write served slates into the serving log, one JSON Lines file per UTC day, atomically."""
    keyed = served.with_columns(pl.col("served_at").dt.date().alias("_day"))
    written = []
    for (day,), part in sorted(keyed.partition_by("_day", as_dict=True, include_key=False).items()):
        target = lake.landing_dir("recommendations", day) / f"{name}.jsonl"
        with atomic_path(target) as tmp:
            part.write_ndjson(tmp)
        written.append(target)
    return written


def now_utc() -> datetime:
    return datetime.now(UTC)
