"""Tuning suggestions and decisions in fbloop's database, on SQLite and on PostgreSQL."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from fbloop_assets.lib.common.store import dispose_all, open_store
from fbloop_assets.lib.tuning.store import (
    UnknownSuggestion,
    decide,
    decisions,
    decisions_table,
    get_suggestion,
    save_suggestions,
)

SUGGESTION = {
    "id": "ts-000000000001",
    "campaign_id": "camp-1",
    "day": "2026-01-10",
    "parameter": "max_followers",
    "current": 2_000_000,
    "proposed": 999_999,
    "change": "drop mega creators",
    "kpi": "conversion_rate",
    "baseline": 0.01,
    "expected": 0.012,
    "expected_change": 0.2,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = (
        f"sqlite:///{tmp_path / 'fbloop.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    yield open_store(url)
    dispose_all()


def test_migration_creates_the_tuning_tables(engine: sa.Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())
    assert {"tuning_suggestions", "tuning_decisions"} <= tables


def test_suggestions_are_stored_once(engine: sa.Engine) -> None:
    assert save_suggestions(engine, [SUGGESTION]) == 1
    assert save_suggestions(engine, [SUGGESTION]) == 0  # a re-run of the day stores nothing twice
    assert get_suggestion(engine, SUGGESTION["id"])["proposed"] == 999_999


def test_decisions_are_appended_and_the_newest_counts(engine: sa.Engine) -> None:
    save_suggestions(engine, [SUGGESTION])
    decide(engine, SUGGESTION["id"], "rejected", "not now", "ana", datetime(2026, 1, 11, 9, tzinfo=UTC))
    decide(engine, SUGGESTION["id"], "accepted", "convinced", "ana", datetime(2026, 1, 11, 10, tzinfo=UTC))
    [latest] = decisions(engine, "camp-1")
    assert (latest["decision"], latest["reason"], latest["actor"]) == ("accepted", "convinced", "ana")
    assert latest["suggestion"]["change"] == "drop mega creators"
    assert decisions(engine, "camp-other") == []
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(decisions_table)) == 2


def test_bad_decisions_are_refused(engine: sa.Engine) -> None:
    save_suggestions(engine, [SUGGESTION])
    with pytest.raises(UnknownSuggestion, match="unknown suggestion 'ts-nope'"):
        decide(engine, "ts-nope", "accepted", "why not")
    with pytest.raises(ValueError, match="needs a reason"):
        decide(engine, SUGGESTION["id"], "accepted", "  ")
    with pytest.raises(ValueError, match="decision must be one of"):
        decide(engine, SUGGESTION["id"], "maybe", "hmm")
