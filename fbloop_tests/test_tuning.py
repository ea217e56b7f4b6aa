"""The tuning engine on the simulated world with planted truths, and its safeguards.

One campaign's macro and mega creators have bought audiences (a tenth of the sales per click),
another's audiences tire the more its creators post a week, and a control campaign's outcomes do
not depend on the creator at all. The engine must find the first two and leave the control alone.
"""

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import polars as pl
import pytest

from fbloop_assets.lib.common.config import TuningConfig
from fbloop_assets.lib.scoring.features import CreatorFeatures
from fbloop_assets.lib.tuning.policy import tune_day
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


def tune_picked_day(played: Played, picked: dict[str, str], decided: list[dict], **config: int) -> dict:
    """`policy.tune_day` for the three planted campaigns on the last played day."""
    campaigns = played.world.campaigns.filter(pl.col("campaign_id").is_in(list(picked.values())))
    catalog = CreatorFeatures.build(played.world.creators)
    return tune_day(played.days[-1], campaigns, played.results, catalog, decided, TuningConfig(**config))


def entry(record: dict, campaign_id: str) -> dict:
    return next(c for c in record["campaigns"] if c["campaign_id"] == campaign_id)


def decided_on(suggestion: dict, kind: str, days_before: int, played: Played) -> dict:
    """A row of `store.decisions` on ``suggestion``, taken at noon ``days_before`` the last day."""
    when = datetime.combine(played.days[-1] - timedelta(days=days_before), time(12), tzinfo=UTC)
    return {
        "suggestion_id": suggestion["id"],
        "decision": kind,
        "reason": "owner's call",
        "actor": "ana",
        "at": when.isoformat(timespec="seconds"),
        "suggestion": suggestion,
    }


def test_the_day_tunes_every_active_campaign_with_the_engine(played: Played, picked: dict[str, str]) -> None:
    record = tune_picked_day(played, picked, [])
    assert {c["campaign_id"] for c in record["campaigns"]} == set(picked.values())
    assert entry(record, picked["mega"]) == tune(played, picked["mega"]).as_dict()
    assert record["serving_days"] == [d.isoformat() for d in played.days]
    assert (record["decisions"], record["tracking"]) == ([], [])


def test_a_change_rejected_this_week_is_not_proposed_again(played: Played, picked: dict[str, str]) -> None:
    before = tune_picked_day(played, picked, [])
    top = entry(before, picked["mega"])["suggestions"][0]
    record = tune_picked_day(played, picked, [decided_on(top, "rejected", 1, played)])
    after = entry(record, picked["mega"])
    assert (top["parameter"], top["proposed"]) not in {
        (s["parameter"], s["proposed"]) for s in after["suggestions"]
    }
    assert after["held"] is None and entry(record, picked["cadence"]) == entry(before, picked["cadence"])
    assert record["decisions"][0]["decision"] == "rejected" and record["tracking"] == []
    # a week later the owner may hear of it again
    again = tune_picked_day(played, picked, [decided_on(top, "rejected", 7, played)])
    assert entry(again, picked["mega"])["suggestions"][0] == top


def test_a_campaign_at_the_weekly_cap_gets_no_new_suggestions(played: Played, picked: dict[str, str]) -> None:
    before = tune_picked_day(played, picked, [])
    top = entry(before, picked["mega"])["suggestions"][0]
    accepted = [decided_on(top, "accepted", 1, played)]
    capped = tune_picked_day(played, picked, accepted, max_changes_per_week=1)
    held = entry(capped, picked["mega"])
    assert held["suggestions"] == [] and "limit tuning.max_changes_per_week = 1" in (held["held"] or "")
    assert held["considered"] == entry(before, picked["mega"])["considered"]  # still examined and reported
    assert entry(capped, picked["cadence"]) == entry(before, picked["cadence"])  # other campaigns go on
    [tracked] = capped["tracking"]
    assert tracked["suggestion_id"] == top["id"] and tracked["days_since"] == 1 and tracked["realized"] > 0
    below_cap = tune_picked_day(played, picked, accepted, max_changes_per_week=2)
    assert entry(below_cap, picked["mega"])["held"] is None
