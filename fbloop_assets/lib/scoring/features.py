"""The scorer's feature vector φ(campaign, creator) and which creators a campaign may be shown.

A suggestion ranks the creators eligible for a campaign by ``w · φ``. Eligibility is the
campaign's hard filters (follower range, minimum engagement rate); everything else the brand
asked for is a soft feature, so that the weights, not a filter, decide how much it matters.

φ, every component in [0, 1] except the two quality scores in [-1, 1]:

- ``niche_match``: 1 if the creator's niche is one of the campaign's target niches.
- ``audience_age_match``: 1 if the creator's dominant audience age bucket is targeted.
- ``audience_country_match``: 1 if the creator's dominant audience country is targeted.
- ``follower_tier``: log10(followers) / 7, so 10 M followers is 1.0.
- ``engagement_quality``: log2 of the engagement rate over its follower-tier benchmark, / 2,
  clipped; 0 is a typical creator of that size. Inflated by bought engagement (a known weakness
  that feedback must correct).
- ``cost_efficiency``: log10 of engaged followers per EUR of a post, mapped from [-3, 1] to
  [0, 1].
- ``past_conversion_rate``: learned from feedback (see `performance`): log2 of the creator's
  smoothed conversions per click over the catalog's rate, / 2, clipped; 0 without evidence.

Creator-level components are computed once per catalog snapshot (`CreatorFeatures`); the three
match components per campaign, with numpy, so that one request over 50,000 creators stays in
milliseconds. This module does not know how weights are learned; it only computes φ and scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fbloop_assets.lib.ingest.landing import LIST_SEPARATOR

FEATURES = (
    "niche_match",
    "audience_age_match",
    "audience_country_match",
    "follower_tier",
    "engagement_quality",
    "cost_efficiency",
    "past_conversion_rate",
)
CREATOR_FEATURES = FEATURES[3:]

# The weights every installation starts from ("w0"), hand-set as a sensible marketer would:
# reach, engagement rate and niche match first, the audience match next, then price and the
# creator's track record (which starts empty, so its weight matters only once feedback arrives).
INITIAL_WEIGHTS_VERSION = "w0"
INITIAL_WEIGHTS: dict[str, float] = {
    "niche_match": 1.0,
    "audience_age_match": 0.5,
    "audience_country_match": 0.5,
    "follower_tier": 1.0,
    "engagement_quality": 1.0,
    "cost_efficiency": 0.3,
    "past_conversion_rate": 0.5,
}

# Engagement-rate benchmarks by follower tier (lower bound of the tier, typical rate); see
# docs/simulator.md for the sources.
TIER_FLOORS = (0, 10_000, 100_000, 1_000_000)
TIER_BENCHMARK_ER = (0.04, 0.025, 0.015, 0.01)


def tier_index(followers: pl.Expr) -> pl.Expr:
    """0 nano (<10k), 1 micro (<100k), 2 macro (<1M), 3 mega."""
    return pl.sum_horizontal([(followers >= floor).cast(pl.Int8) for floor in TIER_FLOORS[1:]])


def creator_feature_exprs() -> list[pl.Expr]:
    """The campaign-independent components of φ over a creator frame (performance joined)."""
    benchmark = tier_index(pl.col("follower_count")).replace_strict(
        dict(enumerate(TIER_BENCHMARK_ER)), return_dtype=pl.Float64
    )
    followers = pl.col("follower_count").cast(pl.Float64).clip(lower_bound=1.0)
    engaged_per_eur = followers * pl.col("engagement_rate") / pl.col("cost_per_post").clip(lower_bound=1.0)
    return [
        (followers.log10() / 7.0).clip(0.0, 1.0).alias("follower_tier"),
        ((pl.col("engagement_rate").clip(lower_bound=1e-4) / benchmark).log(2) / 2.0)
        .clip(-1.0, 1.0)
        .alias("engagement_quality"),
        ((engaged_per_eur.clip(lower_bound=1e-6).log10() + 3.0) / 4.0)
        .clip(0.0, 1.0)
        .alias("cost_efficiency"),
        pl.col("past_conversion_rate").fill_null(0.0).cast(pl.Float64),
    ]


@dataclass(frozen=True)
class CreatorFeatures:
    """A catalog snapshot with its creator-level features, ready to be matched to campaigns."""

    creator_id: np.ndarray
    # categorical attributes as (distinct values, code of each creator): matching a campaign's
    # targets is then a lookup in a tiny table instead of string comparisons over the catalog
    niche: tuple[np.ndarray, np.ndarray]
    age_bucket: tuple[np.ndarray, np.ndarray]
    country: tuple[np.ndarray, np.ndarray]
    followers: np.ndarray
    engagement_rate: np.ndarray
    matrix: np.ndarray  # (creators, len(CREATOR_FEATURES))

    @classmethod
    def build(cls, creators: pl.DataFrame, performance: pl.DataFrame | None = None) -> CreatorFeatures:
        """``performance``: creator_id, past_conversion_rate (missing creators get 0)."""
        if performance is None:
            performance = pl.DataFrame(schema={"creator_id": pl.String, "past_conversion_rate": pl.Float64})
        frame = creators.join(
            performance.select("creator_id", "past_conversion_rate"), on="creator_id", how="left"
        ).with_columns(creator_feature_exprs())
        return cls(
            creator_id=frame["creator_id"].to_numpy(),
            niche=_codes(frame["niche"]),
            age_bucket=_codes(frame["audience_age_bucket"]),
            country=_codes(frame["audience_country"]),
            followers=frame["follower_count"].to_numpy(),
            engagement_rate=frame["engagement_rate"].to_numpy(),
            matrix=frame.select(CREATOR_FEATURES).to_numpy().astype(np.float64),
        )

    def pool(self, campaign: dict) -> tuple[np.ndarray, np.ndarray]:
        """The creators eligible for ``campaign`` (a campaign row as a dict) and their φ matrix."""
        eligible = np.flatnonzero(
            (self.followers >= campaign["min_followers"])
            & (self.followers <= campaign["max_followers"])
            & (self.engagement_rate >= campaign["min_engagement_rate"])
        )
        matches = [
            np.isin(values, campaign[target].split(LIST_SEPARATOR)).astype(np.float64)[codes[eligible]]
            for (values, codes), target in (
                (self.niche, "target_niches"),
                (self.age_bucket, "target_age_buckets"),
                (self.country, "target_countries"),
            )
        ]
        phi = np.column_stack([*matches, self.matrix[eligible]])
        return eligible, phi


def _codes(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    values, codes = np.unique(column.fill_null("").to_numpy().astype(str), return_inverse=True)
    return values, codes


def eligible_pairs(
    campaigns: pl.DataFrame, creators: pl.DataFrame, performance: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Every (campaign, creator) that passes the campaign's hard filters, with φ."""
    catalog = CreatorFeatures.build(creators, performance)
    frames = []
    for campaign in campaigns.iter_rows(named=True):
        eligible, phi = catalog.pool(campaign)
        frames.append(
            pl.DataFrame(
                {"campaign_id": campaign["campaign_id"], "creator_id": catalog.creator_id[eligible]}
            ).with_columns(pl.DataFrame(phi, schema=list(FEATURES), orient="row"))
        )
    schema = {"campaign_id": pl.String, "creator_id": pl.String} | {f: pl.Float64 for f in FEATURES}
    return pl.concat([pl.DataFrame(schema=schema), *frames], how="vertical_relaxed").cast(schema)  # type: ignore[arg-type]


def weight_vector(weights: dict[str, float]) -> np.ndarray:
    """The weights in FEATURES order; refuses weights that lack a feature."""
    missing = [f for f in FEATURES if f not in weights]
    if missing:
        raise ValueError(f"weights lack feature(s): {', '.join(missing)}")
    return np.array([weights[f] for f in FEATURES], dtype=np.float64)


def scores(features: pl.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """``w · φ`` for every row of ``features`` (a frame with the FEATURES columns)."""
    vector = weight_vector(weights)
    return features.select(FEATURES).to_numpy() @ vector
