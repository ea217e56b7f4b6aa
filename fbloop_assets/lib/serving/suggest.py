"""Suggestions: rank a campaign's eligible creators by ``w · φ``, draw slates, log what was served.

The same code serves `fbloop suggest`, the closed-loop demo and the simulator's own traffic:

- `ScoringContext` holds what a request is scored against: the campaigns, the creator catalog
  with its creator-level features (`features.CreatorFeatures`) and the weights version in force.
  `ScoringContext.from_lake` takes the latest campaign and creator snapshots materialized up to
  the serving day and the creator performance of the days before it.
- `ScoringContext.rank` scores one campaign's pool deterministically (what an analyst inspects).
- `serve` draws one Plackett-Luce slate per request over the pool's standardized scores (see
  `serving`), so every logged rank carries its propensity; rows follow the serving log's contract.
- `Arms` and `serve_arms`: while a canary runs, a share of requests (a stable hash of the request
  id) is served with the canary's weights; every logged slate names the version that served it.
- `log_served` writes them into ``landing/recommendations/<day>/``, the folder the next
  `raw_recommendations` partition reads: that is the loop.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from fbloop_assets.lib.features import FEATURES, CreatorFeatures, weight_vector
from fbloop_assets.lib.lake import Lake, atomic_path
from fbloop_assets.lib.landing import typed_schema
from fbloop_assets.lib.registry import Registry, WeightsVersion
from fbloop_assets.lib.serving import canary_arm, plackett_luce_slates, standardized

SERVED_SCHEMA = pl.Schema(typed_schema("recommendations"))


class NoSuchCampaign(LookupError):
    pass


def latest_partition(lake: Lake, asset: str, up_to: date) -> date | None:
    """The latest materialized daily file of ``asset`` on or before ``up_to``."""
    folder = lake.root / "warehouse" / asset
    if not folder.is_dir():
        return None
    days = sorted(d for p in folder.glob("*.parquet") if (d := date.fromisoformat(p.stem)) <= up_to)
    return days[-1] if days else None


@dataclass(frozen=True)
class ScoringContext:
    """Everything one serving day's requests are scored against."""

    campaigns: dict[str, dict]
    catalog: CreatorFeatures
    weights: WeightsVersion
    sources: dict[str, str | None]  # which snapshot days were used, for the record

    @classmethod
    def build(
        cls,
        campaigns: pl.DataFrame,
        creators: pl.DataFrame,
        performance: pl.DataFrame | None,
        weights: WeightsVersion,
        sources: dict[str, str | None] | None = None,
    ) -> ScoringContext:
        return cls(
            campaigns={row["campaign_id"]: row for row in campaigns.iter_rows(named=True)},
            catalog=CreatorFeatures.build(creators, performance),
            weights=weights,
            sources=sources or {},
        )

    @classmethod
    def from_lake(cls, lake: Lake, day: date, weights: WeightsVersion) -> ScoringContext:
        """Snapshots of ``day`` (or the latest before) and the performance known before ``day``."""
        used: dict[str, str | None] = {}
        frames: dict[str, pl.DataFrame | None] = {}
        for asset, up_to in (
            ("campaigns", day),
            ("creators", day),
            ("creator_performance", day - timedelta(days=1)),
        ):
            found = latest_partition(lake, asset, up_to)
            used[asset] = found.isoformat() if found else None
            frames[asset] = pl.read_parquet(lake.table_path(asset, found)) if found else None
        campaigns, creators = frames["campaigns"], frames["creators"]
        if campaigns is None or creators is None:
            raise FileNotFoundError(
                f"no campaigns or creators materialized on or before {day}: run the daily loop first"
            )
        return cls.build(campaigns, creators, frames["creator_performance"], weights, used)

    def campaign(self, campaign_id: str) -> dict:
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            raise NoSuchCampaign(f"unknown campaign {campaign_id!r}") from None

    def pool(self, campaign_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eligible creator ids, their φ and their scores under the context's weights."""
        eligible, phi = self.catalog.pool(self.campaign(campaign_id))
        return self.catalog.creator_id[eligible], phi, phi @ weight_vector(self.weights.weights)

    def rank(self, campaign_id: str, k: int) -> pl.DataFrame:
        """The top ``k`` eligible creators by score, with φ (deterministic)."""
        ids, phi, score = self.pool(campaign_id)
        top = np.argsort(-score, kind="stable")[:k]
        return pl.DataFrame(
            {"rank": np.arange(1, top.size + 1), "creator_id": ids[top], "score": score[top]}
        ).with_columns(pl.DataFrame(phi[top], schema=list(FEATURES), orient="row"))


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:20]}"


def serve(
    context: ScoringContext,
    requests: pl.DataFrame,
    k: int,
    temperature: float,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """One slate of up to ``k`` creators per request (request_id, campaign_id, served_at).

    Recommendation ids are ``rec-<request id without 'req-'>-<rank>``. Rows follow the serving
    log's landing contract, in request and rank order.
    """
    frames = []
    for (campaign_id,), group in requests.group_by("campaign_id", maintain_order=True):
        ids, _, score = context.pool(str(campaign_id))
        if ids.size == 0:
            raise ValueError(f"campaign {campaign_id!r} has no eligible creator")
        chosen, propensity = plackett_luce_slates(standardized(score), group.height, k, temperature, rng)
        width = chosen.shape[1]
        frames.append(
            pl.DataFrame(
                {
                    "request_id": np.repeat(group["request_id"].to_numpy(), width),
                    "campaign_id": str(campaign_id),
                    "creator_id": ids[chosen.ravel()],
                    "rank": np.tile(np.arange(1, width + 1), group.height),
                    "score": np.round(score[chosen.ravel()], 6),
                    "propensity": propensity.ravel(),
                    "served_at": np.repeat(group["served_at"].to_numpy(), width),
                }
            )
        )
    if not frames:
        return pl.DataFrame(schema=SERVED_SCHEMA)
    served = pl.concat(frames).with_columns(
        pl.format(
            "rec-{}-{}",
            pl.col("request_id").str.strip_prefix("req-"),
            pl.col("rank").cast(pl.String).str.zfill(2),
        ).alias("recommendation_id"),
        pl.lit(context.weights.version).alias("weights_version"),
        pl.col("served_at").cast(pl.Datetime("us", "UTC")),
    )
    order = requests.select("request_id").with_row_index("_order")
    return (
        served.join(order, on="request_id")
        .sort("_order", "rank")
        .select(SERVED_SCHEMA.names())
        .cast(SERVED_SCHEMA)
    )


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
        return serve(replace(context, weights=arms.production), requests, k, temperature, rng)
    to_canary = pl.Series(canary_arm(requests["request_id"].to_list(), arms.share))
    parts = [
        serve(replace(context, weights=weights), requests.filter(mask), k, temperature, rng)
        for weights, mask in ((arms.production, ~to_canary), (arms.canary, to_canary))
    ]
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
