"""The scorer's features: hard filters decide eligibility, φ is computed as documented."""

import polars as pl
import pytest

from fbloop_assets.lib.scoring.features import FEATURES, INITIAL_WEIGHTS, eligible_pairs, scores

CAMPAIGN = {
    "campaign_id": "camp-1",
    "target_niches": "fitness;food",
    "min_followers": 5_000,
    "max_followers": 1_000_000,
    "target_age_buckets": "18-25;25-35",
    "target_countries": "DE;FR",
    "min_engagement_rate": 0.01,
}


def creator(creator_id: str, **overrides: object) -> dict:
    base = {
        "creator_id": creator_id,
        "niche": "fitness",
        "follower_count": 100_000,
        "engagement_rate": 0.015,
        "audience_age_bucket": "18-25",
        "audience_country": "DE",
        "cost_per_post": 1_500.0,
    }
    return base | overrides


def pairs(*creators: dict) -> pl.DataFrame:
    return eligible_pairs(pl.DataFrame([CAMPAIGN]), pl.DataFrame(list(creators)))


def test_hard_filters_decide_eligibility() -> None:
    result = pairs(
        creator("ok"),
        creator("too-small", follower_count=4_999),
        creator("too-big", follower_count=1_000_001),
        creator("too-flat", engagement_rate=0.009),
        creator("wrong-niche", niche="gaming"),  # a soft feature, not a filter
    )
    assert result["creator_id"].to_list() == ["ok", "wrong-niche"]


def test_feature_values_of_a_typical_macro_creator() -> None:
    row = pairs(creator("c", audience_country="US")).row(0, named=True)
    assert row["niche_match"] == 1.0 and row["audience_age_match"] == 1.0
    assert row["audience_country_match"] == 0.0
    assert row["follower_tier"] == pytest.approx(5 / 7)
    assert row["engagement_quality"] == pytest.approx(0.0)  # exactly the macro benchmark of 1.5 %
    # 100k x 1.5 % / EUR 1500 = 1 engaged follower per euro -> log10 = 0 -> (0 + 3) / 4
    assert row["cost_efficiency"] == pytest.approx(0.75)


def test_bought_engagement_raises_engagement_quality() -> None:
    honest, inflated = (
        pairs(creator("a"), creator("b", engagement_rate=0.06)).sort("creator_id").rows(named=True)
    )
    assert inflated["engagement_quality"] == pytest.approx(1.0)  # 4x the benchmark, clipped at log2(4)/2
    assert honest["engagement_quality"] < inflated["engagement_quality"]


def test_scores_are_the_dot_product_with_the_weights() -> None:
    frame = pairs(creator("c"))
    expected = sum(INITIAL_WEIGHTS[f] * frame[f][0] for f in FEATURES)
    assert scores(frame, INITIAL_WEIGHTS)[0] == pytest.approx(expected)
    with pytest.raises(ValueError, match="weights lack feature"):
        scores(frame, {"niche_match": 1.0})
