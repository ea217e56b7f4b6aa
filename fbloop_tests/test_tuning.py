"""The tuning engine on the simulated world with planted truths, and its safeguards.

One campaign's macro and mega creators have bought audiences (a tenth of the sales per click),
another's audiences tire the more its creators post a week, and a control campaign's outcomes do
not depend on the creator at all. The engine must find the first two and leave the control alone.
"""

from dataclasses import replace

import polars as pl
import pytest

from fbloop_assets.lib.common.config import TuningConfig
from fbloop_assets.lib.scoring.features import CreatorFeatures
from fbloop_assets.lib.tuning.suggestions import CampaignTuning, suggestion_id, tune_campaign
from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.world import make_world
from fbloop_tests.tuning_world import SEED, START, Played, pick_campaigns, planted_params, play

FIELDS = {
    "id",
    "campaign_id",
    "day",
    "parameter",
    "current",
    "proposed",
    "kpi",
    "baseline",
    "expected",
    "expected_change",
    "ci_low",
    "ci_high",
    "confidence",
    "records",
    "creators",
    "total_records",
    "rationale",
}


@pytest.fixture(scope="module")
def picked() -> dict[str, str]:
    return pick_campaigns(make_world(SimParams(), SEED, START))


@pytest.fixture(scope="module")
def played(picked: dict[str, str]) -> Played:
    return play(planted_params(picked), days=14, recommendations_per_day=8000)


def tune(
    played: Played, campaign_id: str, config: TuningConfig | None = None, **kw: object
) -> CampaignTuning:
    campaign = played.world.campaigns.filter(pl.col("campaign_id") == campaign_id).row(0, named=True)
    catalog = CreatorFeatures.build(played.world.creators)
    return tune_campaign(
        campaign, played.results, played.days[-1], played.days, config or TuningConfig(), catalog, **kw
    )  # type: ignore[arg-type]


def test_bought_audiences_of_big_creators_are_dropped(played: Played, picked: dict[str, str]) -> None:
    result = tune(played, picked["mega"])
    top = result.suggestions[0]
    # the planted truth: macro and mega convert at a tenth of the rate, so the ceiling goes below 100k
    assert (top.parameter, top.proposed) == ("max_followers", 99_999)
    assert top.kpi == "conversion_rate" and top.ci_low > 0.2 and top.expected_change > 0.5
    assert top.cost_expected < top.cost_baseline  # and each sale gets cheaper


def test_too_high_a_cadence_is_lowered(played: Played, picked: dict[str, str]) -> None:
    result = tune(played, picked["cadence"])
    cadence = [s for s in result.suggestions if s.parameter == "cadence_posts_per_week"]
    assert cadence, [s.parameter for s in result.suggestions]
    s = cadence[0]
    assert s.proposed < s.current and s.kpi == "engagement_rate"
    # planted: 30% fewer engagements per weekly post, i.e. +43% for one post less; the interval holds it
    assert s.ci_low < 1 / 0.7 - 1 < s.ci_high and s.ci_low > 0
    assert result.suggestions[0] is s  # and it is the biggest expected gain


def test_control_campaign_gets_no_suggestion(played: Played, picked: dict[str, str]) -> None:
    result = tune(played, picked["control"])
    assert result.considered > 5 and result.records > 1000  # it was examined, with plenty of data
    assert result.suggestions == []


def test_suggestions_carry_every_field_and_a_plain_rationale(played: Played, picked: dict[str, str]) -> None:
    s = tune(played, picked["mega"]).suggestions[0]
    assert set(s.as_dict()) >= FIELDS
    assert s.records >= TuningConfig().min_records and s.total_records > s.records
    assert "would have been" in s.rationale and "macro" in s.rationale
    assert s.id == suggestion_id(s.campaign_id, played.days[-1], s.parameter, s.proposed)
    assert tune(played, picked["mega"]).suggestions[0].id == s.id  # deterministic, content-addressed


def test_no_suggestion_without_minimum_evidence(played: Played, picked: dict[str, str]) -> None:
    assert tune(played, picked["mega"], TuningConfig(min_records=100_000)).suggestions == []
    assert tune(played, picked["mega"], TuningConfig(min_creators=10_000)).suggestions == []


def test_pool_floor_blocks_narrowing(played: Played, picked: dict[str, str]) -> None:
    narrowed = tune(played, picked["mega"], TuningConfig(min_pool_size=1_000_000))
    assert not [s for s in narrowed.suggestions if s.parameter == "max_followers"]


def test_rejected_change_is_not_proposed_again(played: Played, picked: dict[str, str]) -> None:
    result = tune(played, picked["mega"], skip=lambda parameter, proposed: parameter == "max_followers")
    assert "max_followers" not in {s.parameter for s in result.suggestions}


def test_planted_effects_are_off_by_default() -> None:
    params = SimParams()
    assert not (
        params.planted_tier_conversion or params.planted_cadence_fatigue or params.planted_flat_response
    )
    assert replace(params, planted_flat_response=("x",)) != params
