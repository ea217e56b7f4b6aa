"""Normalization: one feedback schema, joins, consent, privacy modes, attribution completeness."""

from datetime import UTC, date, datetime

import polars as pl
import pytest

from fbloop_assets.lib.common.config import FbloopConfig, PrivacyConfig
from fbloop_assets.lib.common.privacy import pseudonymize
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
