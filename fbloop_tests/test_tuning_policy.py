"""The tuning policy's safeguards as pure functions: the weekly cap, no rejected change twice, tracking.

Decisions look like `lib.tuning.store.decisions` rows. The engine under these safeguards, on the
planted world, is in test_tuning.py; in the daily job, in test_tuning_loop.py.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from fbloop_assets.lib.common.config import TuningConfig
from fbloop_assets.lib.tuning.policy import (
    in_week_ending,
    recent_decisions,
    rejected_changes,
    tracking,
    weekly_cap_reason,
)
from fbloop_assets.lib.tuning.results import RESULTS_SCHEMA

DAY = date(2026, 1, 10)  # its week: 2026-01-04T00:00Z up to (not including) 2026-01-11T00:00Z


def decision(
    kind: str,
    at: datetime,
    campaign: str = "camp-1",
    parameter: str = "max_followers",
    proposed: Any = 99_999,
    sid: str = "ts-000000000001",
) -> dict[str, Any]:
    suggestion = {
        "id": sid,
        "campaign_id": campaign,
        "parameter": parameter,
        "proposed": proposed,
        "change": "drop macro and mega creators",
        "kpi": "conversion_rate",
        "baseline": 0.02,
        "expected": 0.03,
        "expected_change": 0.5,
    }
    return {
        "suggestion_id": sid,
        "decision": kind,
        "reason": "why not",
        "actor": "ana",
        "at": at.isoformat(timespec="seconds"),
        "suggestion": suggestion,
    }


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "counts"),
    [
        ("2026-01-04T00:00:00+00:00", True),  # the week's first second
        ("2026-01-03T23:59:59+00:00", False),  # eight days before the day's end
        ("2026-01-10T23:59:59+00:00", True),
        ("2026-01-11T00:00:00+00:00", False),  # after the day: a re-run of an old day ignores it
        ("2026-01-11T00:30:00+01:00", True),  # 23:30 UTC on the day itself
    ],
)
def test_a_decision_counts_in_the_seven_days_ending_with_the_day(when: str, counts: bool) -> None:
    assert in_week_ending(when, DAY) is counts


def test_recent_decisions_are_the_campaigns_own_within_the_week() -> None:
    mine = decision("accepted", at(9))
    decided = [mine, decision("accepted", at(9), campaign="camp-2"), decision("accepted", at(2))]
    assert recent_decisions(decided, "camp-1", DAY) == [mine]


def test_the_weekly_cap_holds_a_campaign_with_enough_accepted_changes() -> None:
    config = TuningConfig(max_changes_per_week=2)
    two = [decision("accepted", at(5), sid="ts-a"), decision("accepted", at(9), sid="ts-b")]
    reason = weekly_cap_reason(two, config)
    assert reason == (
        "2 change(s) accepted in the last 7 days (limit tuning.max_changes_per_week = 2); "
        "the campaign needs time to show their effect"
    )
    assert weekly_cap_reason(two, TuningConfig(max_changes_per_week=3)) is None


def test_the_weekly_cap_counts_only_acceptances_of_the_week() -> None:
    config = TuningConfig(max_changes_per_week=2)
    accepted_and_rejected = [decision("accepted", at(5), sid="ts-a"), decision("rejected", at(9), sid="ts-b")]
    assert weekly_cap_reason(accepted_and_rejected, config) is None
    one_too_old = [decision("accepted", at(3), sid="ts-a"), decision("accepted", at(9), sid="ts-b")]
    assert weekly_cap_reason(recent_decisions(one_too_old, "camp-1", DAY), config) is None
    assert weekly_cap_reason(recent_decisions(one_too_old, "camp-1", date(2026, 1, 9)), config) is not None


def test_a_rejected_change_is_skipped_but_not_other_values_or_acceptances() -> None:
    skip = rejected_changes(
        [decision("rejected", at(9)), decision("accepted", at(9), parameter="min_followers")]
    )
    assert skip("max_followers", 99_999)
    assert not skip("max_followers", 999_999)  # a different value of the same parameter may be proposed
    assert not skip("min_followers", 99_999)  # accepted, not rejected
    assert not rejected_changes([])("max_followers", 99_999)


def test_a_rejection_of_last_week_no_longer_holds_back_the_change() -> None:
    decided = [decision("rejected", at(2))]
    assert not rejected_changes(recent_decisions(decided, "camp-1", DAY))("max_followers", 99_999)
    assert rejected_changes(recent_decisions(decided, "camp-1", date(2026, 1, 5)))("max_followers", 99_999)


def _results(rows: list[tuple[date, str, int, float, float]]) -> pl.DataFrame:
    """(serving day, campaign, posts, clicks, conversions); the other columns do not matter here."""
    return pl.DataFrame(
        [
            {
                **dict.fromkeys(RESULTS_SCHEMA),
                "serving_day": d,
                "campaign_id": c,
                "creator_id": "cr-1",
                "posts": posts,
                "clicks": clicks,
                "conversions": conversions,
                "impressions": 1000.0,
                "engagements": 50.0,
            }
            for d, c, posts, clicks, conversions in rows
        ],
        schema=RESULTS_SCHEMA,
    )


def test_tracking_compares_the_kpi_after_an_acceptance_with_baseline_and_expectation() -> None:
    results = _results(
        [
            (date(2026, 1, 5), "camp-1", 10, 100.0, 1.0),  # the decision's day: before it counts as before
            (date(2026, 1, 6), "camp-1", 10, 100.0, 3.0),
            (date(2026, 1, 7), "camp-1", 30, 300.0, 9.0),
            (date(2026, 1, 7), "camp-2", 30, 300.0, 30.0),  # another campaign
        ]
    )
    [row] = tracking([decision("accepted", at(5)), decision("rejected", at(5), sid="ts-r")], results)
    assert row["suggestion_id"] == "ts-000000000001" and row["campaign_id"] == "camp-1"
    assert row["realized"] == pytest.approx(12.0 / 400.0)  # conversions per click on 01-06 and 01-07
    assert row["realized_change"] == pytest.approx(0.03 / 0.02 - 1.0)
    assert (row["baseline"], row["expected"], row["expected_change"]) == (0.02, 0.03, 0.5)
    assert (row["posts_since"], row["days_since"]) == (40, 2)


def test_tracking_without_posts_since_the_decision_has_no_value() -> None:
    results = _results([(date(2026, 1, 5), "camp-1", 10, 100.0, 1.0)])
    [row] = tracking([decision("accepted", at(5) + timedelta(days=1))], results)
    assert (row["realized"], row["realized_change"], row["posts_since"], row["days_since"]) == (
        None,
        None,
        0,
        0,
    )
