"""Normalization: one feedback schema, joins, consent, privacy modes, attribution completeness."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from fbloop_assets.lib.common.config import (
    ConfigError,
    FbloopConfig,
    IngestionConfig,
    PrivacyConfig,
    parse_config,
)
from fbloop_assets.lib.common.privacy import pseudonymize
from fbloop_assets.lib.dataset.examples import feedback_aggregates, feedback_masks
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA, normalize_day
from fbloop_assets.lib.ingest.landing import typed_schema

KEY = b"k" * 32
DAY = date(2026, 1, 10)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def recs() -> pl.DataFrame:
    rows = [
        ("rec-old", "req-1", "camp-1", "cre-1", 1, 2.0, 0.4, "w0", at(2)),  # served 8 days before DAY
        ("rec-new", "req-2", "camp-1", "cre-2", 2, 1.5, 0.3, "w0", at(9)),
    ]
    return pl.DataFrame(rows, schema=typed_schema("recommendations"), orient="row")


def signals(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=typed_schema("outcome_signals"), orient="row")


def labels(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=typed_schema("labels"), orient="row")


def conversion(
    signal_id: str, rec: str, subject: str | None, consent: bool | None, age: int | None = 31
) -> tuple:
    return (
        signal_id,
        "shop_pixel",
        "conversion",
        1.0,
        at(10, 8),
        rec,
        subject,
        age,
        "DE",
        consent,
        "https://x.example/p",
    )


def test_outcomes_and_labels_share_one_schema_joined_to_their_recommendation() -> None:
    result = normalize_day(
        DAY,
        recs(),
        signals(
            ("s1", "platform_api", "engagement", 40.0, at(10, 1), "rec-new", None, None, None, None, None)
        ),
        labels(
            ("l1", "rev-1", "rec-new", "useful", 0.9, at(10, 9), "great fit, see https://x.example"),
            ("l2", "rev-2", "rec-new", "not_useful", 0.6, at(10, 9), None),
        ),
        FbloopConfig(),
        KEY,
    )
    feedback = result.feedback.sort("feedback_id")
    assert feedback.schema == pl.Schema(FEEDBACK_SCHEMA)
    assert feedback["feedback_id"].to_list() == ["label:l1", "label:l2", "signal:s1"]
    assert feedback["value"].to_list() == [1.0, 0.0, 40.0]
    assert set(feedback["creator_id"]) == {"cre-2"} and set(feedback["propensity"]) == {0.3}
    assert "comment" not in feedback.columns and "landing_url" not in feedback.columns


def test_unknown_recommendation_is_rejected_with_reason() -> None:
    result = normalize_day(
        DAY,
        recs(),
        signals(("s1", "platform_api", "click", 3.0, at(10), "rec-ghost", None, None, None, None, None)),
        labels(("l1", "rev-1", "rec-ghost", "useful", 0.9, at(10), None)),
        FbloopConfig(),
        KEY,
    )
    assert result.feedback.height == 0
    assert result.rejects["reason_code"].to_list() == ["unknown_recommendation"] * 2
    assert result.rejects["source"].to_list() == ["outcome_signals", "labels"]
    assert result.stats["unknown_recommendation"] == 2


def test_subject_signals_without_consent_are_excluded_and_counted() -> None:
    result = normalize_day(
        DAY,
        recs(),
        signals(
            conversion("c1", "rec-new", "u1", True),
            conversion("c2", "rec-new", "u2", False),
            conversion("c3", "rec-new", "u3", None),
        ),
        labels(),
        FbloopConfig(),
        KEY,
    )
    assert result.feedback["feedback_id"].to_list() == ["signal:c1"]
    assert result.stats["excluded_no_consent"] == 2


@pytest.mark.parametrize(
    ("mode", "expected_key", "expected_bucket"),
    [
        ("pseudonymized", pseudonymize(pl.Series(["u1"]), KEY)[0], "25-35"),
        ("aggregated", None, None),
        ("identifiable", "u1", "25-35"),
    ],
)
def test_privacy_modes(mode: str, expected_key: str | None, expected_bucket: str | None) -> None:
    config = FbloopConfig(privacy=PrivacyConfig(mode=mode))
    result = normalize_day(
        DAY, recs(), signals(conversion("c1", "rec-new", "u1", True)), labels(), config, KEY
    )
    row = result.feedback.row(0, named=True)
    assert (row["subject_key"], row["age_bucket"]) == (expected_key, expected_bucket)


def _per_recommendation(feedback: pl.DataFrame) -> pl.DataFrame:
    """What datasets read of feedback: the sums per recommendation inside the attribution window."""
    return (
        feedback.lazy()
        .select("recommendation_id", *feedback_masks())
        .group_by("recommendation_id")
        .agg(feedback_aggregates())
        .sort("recommendation_id")
        .collect()
    )


def test_aggregated_mode_keeps_one_count_per_recommendation_event_and_source() -> None:
    day_signals = signals(
        conversion("c1", "rec-new", "u1", True),
        conversion("c1", "rec-new", "u1", True),  # delivered twice
        conversion("c2", "rec-new", "u2", True),
        (*conversion("c3", "rec-new", None, None)[:3], 2.0, *conversion("c3", "rec-new", None, None)[4:]),
        conversion("c4", "rec-new", "u4", False),  # no consent: excluded
        conversion("c9", "rec-new", "u9", True),  # already delivered on an earlier day
        conversion("c5", "rec-old", "u5", True),  # rec-old's conversion window closed on Jan 9: late
        ("s1", "platform_api", "click", 3.0, at(10, 1), "rec-new", None, None, None, None, None),
        ("s2", "platform_api", "click", 1.0, at(10, 2), "rec-new", None, None, None, None, None),
    )
    earlier = pl.DataFrame({"signal_id": ["c9", "c-other"]})
    config = FbloopConfig(privacy=PrivacyConfig(mode="aggregated"))
    result = normalize_day(DAY, recs(), day_signals, labels(), config, KEY, earlier)
    feedback = result.feedback.sort("feedback_id")
    assert dict(zip(feedback["feedback_id"], feedback["value"], strict=True)) == {
        "agg:2026-01-10:rec-new:click:platform_api:in": 4.0,
        "agg:2026-01-10:rec-new:conversion:shop_pixel:in": 4.0,
        "agg:2026-01-10:rec-old:conversion:shop_pixel:late": 1.0,
    }
    assert feedback["event_at"].to_list() == [at(10, 2), at(10, 8), at(10, 8)]
    assert feedback["subject_key"].null_count() == feedback.height
    assert result.stats["excluded_no_consent"] == 1
    assert (result.stats["deduplicated"], result.stats["collapsed_into_counts"]) == (2, 3)
    assert result.stats["normalized"] == 3

    # the per-recommendation sums a dataset reads equal those of the pseudonymized rows
    pseudonymized = normalize_day(
        DAY, recs(), day_signals.filter(pl.col("signal_id") != "c9"), labels(), FbloopConfig(), KEY
    )
    assert _per_recommendation(feedback).equals(_per_recommendation(pseudonymized.feedback))


def test_open_attribution_windows_are_marked_incomplete() -> None:
    # rec-new was served on Jan 9: its conversion window (7 days) is open at the end of Jan 10,
    # its impression window (1 day) has closed.
    result = normalize_day(
        DAY,
        recs(),
        signals(
            conversion("c1", "rec-new", "u1", True),
            ("s2", "platform_api", "impression", 900.0, at(10, 1), "rec-new", None, None, None, None, None),
            ("s3", "platform_api", "click", 4.0, at(10, 1), "rec-old", None, None, None, None, None),
        ),
        labels(),
        FbloopConfig(),
        KEY,
    )
    complete = dict(zip(result.feedback["feedback_id"], result.feedback["attribution_complete"], strict=True))
    assert complete == {"signal:c1": False, "signal:s2": True, "signal:s3": True}
    assert result.stats["incomplete"] == 1


def test_same_feedback_twice_is_kept_once() -> None:
    twice = conversion("c1", "rec-new", "u1", True)
    result = normalize_day(DAY, recs(), signals(twice, twice), labels(), FbloopConfig(), KEY)
    assert result.feedback.height == 1 and result.stats["deduplicated"] == 1


def test_normalizing_twice_gives_identical_output() -> None:
    args = (DAY, recs(), signals(conversion("c1", "rec-new", "u1", True)), labels(), FbloopConfig(), KEY)
    assert normalize_day(*args).feedback.equals(normalize_day(*args).feedback)


def impression(signal_id: str, at_: datetime) -> tuple:
    return (signal_id, "platform_api", "impression", 10.0, at_, "rec-new", None, None, None, None, None)


def test_an_event_before_serving_is_quarantined_beyond_the_clock_skew_tolerance() -> None:
    # rec-new was served on Jan 9 at 12:00; the tolerance is 5 minutes by default
    served = at(9)
    result = normalize_day(
        DAY,
        recs(),
        signals(
            impression("s-hour-early", served - timedelta(hours=1)),
            impression("s-skewed", served - timedelta(minutes=4)),
            impression("s-on-time", served + timedelta(minutes=1)),
        ),
        labels(("l-early", "rev-1", "rec-new", "useful", 0.9, served - timedelta(minutes=6), None)),
        FbloopConfig(),
        KEY,
    )
    assert sorted(result.feedback["feedback_id"]) == ["signal:s-on-time", "signal:s-skewed"]
    # within the tolerance the row stays, its event_at moved to the serving time
    event_at = dict(zip(result.feedback["feedback_id"], result.feedback["event_at"], strict=True))
    assert event_at == {"signal:s-skewed": served, "signal:s-on-time": served + timedelta(minutes=1)}
    rejects = result.rejects.sort("source")
    assert rejects.select("source", "reason_code").rows() == [
        ("labels", "before_serving"),
        ("outcome_signals", "before_serving"),
    ]
    assert rejects["reason"][1] == (
        "before_serving: timestamp 2026-01-09T11:00:00Z is 60.0 minutes before recommendation "
        "'rec-new' was served (2026-01-09T12:00:00Z; clock-skew tolerance 5 minutes)"
    )
    assert '"signal_id":"s-hour-early"' in rejects["record"][1]
    assert (result.stats["before_serving"], result.stats["clamped_clock_skew"]) == (2, 1)


def test_the_clock_skew_tolerance_is_configurable() -> None:
    served = at(9)
    day_signals = signals(impression("s-hour-early", served - timedelta(hours=1)))
    strict = FbloopConfig(ingestion=IngestionConfig(clock_skew_tolerance_minutes=0.0))
    lenient = FbloopConfig(ingestion=IngestionConfig(clock_skew_tolerance_minutes=90.0))
    assert normalize_day(DAY, recs(), day_signals, labels(), strict, KEY).stats["before_serving"] == 1
    kept = normalize_day(DAY, recs(), day_signals, labels(), lenient, KEY)
    assert kept.feedback["event_at"].to_list() == [served] and kept.stats["clamped_clock_skew"] == 1


def test_consent_is_judged_before_serving_time() -> None:
    # a subject-level signal without consent is excluded whatever else is wrong with it
    row = list(conversion("c1", "rec-new", "u1", False))
    row[4] = at(9) - timedelta(hours=2)
    result = normalize_day(DAY, recs(), signals(tuple(row)), labels(), FbloopConfig(), KEY)
    assert result.rejects.height == 0 and result.stats["excluded_no_consent"] == 1


@pytest.mark.parametrize("value", ["-1.0", "nan", "inf", "1441"])
def test_the_clock_skew_tolerance_is_validated(value: str) -> None:
    with pytest.raises(
        ConfigError, match=r"ingestion.clock_skew_tolerance_minutes must be a number in \[0, 1440\]"
    ):
        parse_config(f"[ingestion]\nclock_skew_tolerance_minutes = {value}\n")
