"""The scoring context of a serving day: campaigns, the creator catalog with φ, and each pool.

`ScoringContext` holds what a request is scored against: the campaigns and the creator catalog
with its creator-level features (`features.CreatorFeatures`). `ScoringContext.from_lake` takes the
latest campaign and creator snapshots materialized up to the serving day and the creator
performance of the days before it. `pool` gives a campaign's eligible creators and their φ;
`rank` scores them deterministically with any weights (what an analyst inspects).

It knows no weights version and no registry: the dataset rebuilds φ as served through it, and
serving (`lib.serving`) scores it with the weights in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.scoring.features import FEATURES, CreatorFeatures, weight_vector


class NoSuchCampaign(LookupError):
    pass


@dataclass(frozen=True)
class ScoringContext:
    """Everything one serving day's requests are scored against, whatever the weights."""

    campaigns: dict[str, dict]
    catalog: CreatorFeatures
    sources: dict[str, str | None]  # which snapshot days were used, for the record

    @classmethod
    def build(
        cls,
        campaigns: pl.DataFrame,
        creators: pl.DataFrame,
        performance: pl.DataFrame | None,
        sources: dict[str, str | None] | None = None,
    ) -> ScoringContext:
        return cls(
            campaigns={row["campaign_id"]: row for row in campaigns.iter_rows(named=True)},
            catalog=CreatorFeatures.build(creators, performance),
            sources=sources or {},
        )

    @classmethod
    def from_lake(cls, lake: Lake, day: date) -> ScoringContext:
        """Snapshots of ``day`` (or the latest before) and the performance known before ``day``."""
        used: dict[str, str | None] = {}
        frames: dict[str, pl.DataFrame | None] = {}
        for asset, up_to in (
            ("campaigns", day),
            ("creators", day),
            ("creator_performance", day - timedelta(days=1)),
        ):
            found = lake.latest_partition(asset, up_to)
            used[asset] = found.isoformat() if found else None
            frames[asset] = pl.read_parquet(lake.table_path(asset, found)) if found else None
        campaigns, creators = frames["campaigns"], frames["creators"]
        if campaigns is None or creators is None:
            raise FileNotFoundError(
                f"no campaigns or creators materialized on or before {day}: run the daily loop first"
            )
        return cls.build(campaigns, creators, frames["creator_performance"], used)

    def campaign(self, campaign_id: str) -> dict:
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            raise NoSuchCampaign(f"unknown campaign {campaign_id!r}") from None

    def pool(self, campaign_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Eligible creator ids and their φ (rows in catalog order)."""
        eligible, phi = self.catalog.pool(self.campaign(campaign_id))
        return self.catalog.creator_id[eligible], phi

    def scored_pool(
        self, campaign_id: str, weights: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eligible creator ids, their φ and their scores ``w · φ`` under ``weights``."""
        ids, phi = self.pool(campaign_id)
        return ids, phi, phi @ weight_vector(weights)

    def rank(self, campaign_id: str, weights: dict[str, float], k: int) -> pl.DataFrame:
        """The top ``k`` eligible creators by score under ``weights``, with φ (deterministic)."""
        ids, phi, score = self.scored_pool(campaign_id, weights)
        top = np.argsort(-score, kind="stable")[:k]
        return pl.DataFrame(
            {"rank": np.arange(1, top.size + 1), "creator_id": ids[top], "score": score[top]}
        ).with_columns(pl.DataFrame(phi[top], schema=list(FEATURES), orient="row"))
