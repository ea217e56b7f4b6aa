"""The label store on SQLite and PostgreSQL: reviewers, labels, undo as retraction, imports, agreement."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from fbloop_assets.lib.common.agreement import krippendorff_alpha_nominal, label_agreement
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import MIGRATIONS, open_store
from fbloop_assets.lib.labeling.accounts import Accounts, Reviewer
from fbloop_assets.lib.labeling.events import AlreadyLabeled, LabelError, NotFound, UnknownRecommendation
from fbloop_assets.lib.labeling.imports import ImportFileError, import_labels
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_tests.labeling import PASSWORD, Clock, label_store, write_served


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'labels.sqlite'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 1, 5, 10, tzinfo=UTC))


def test_label_and_undo_are_append_only_events(store_url: str, lake: Lake, clock: Clock) -> None:
    write_served(lake, 5)
    store = label_store(open_store(store_url), lake, clock)
    alice = Accounts(store.engine, clock).add_reviewer("alice", "reviewer", PASSWORD)
    first = store.record_label("alice", "rec-00001", "useful", 0.8, "<b>great</b>")
    clock.set("2026-01-06T09:00:00+00:00")
    undo = store.retract(first.label_id, alice)
    second = store.record_label("alice", "rec-00001", "not_useful", 0.6)
    assert store.count_events() == {"label": 2, "retraction": 1}  # nothing deleted
    history = store.history("alice")
    assert [(h["label_id"], h["retracted_at"] is not None) for h in history] == [
        (second.label_id, False),
        (first.label_id, True),
    ]
    assert history[1]["comment"] == "<b>great</b>"  # stored as given; escaping is the page's job
    labels, retractions = store.events_recorded_on(date(2026, 1, 5))
    assert labels["label_id"].to_list() == [first.label_id] and retractions.height == 0
    labels, retractions = store.events_recorded_on(date(2026, 1, 6))
    assert labels["label_id"].to_list() == [second.label_id]
    assert retractions["label_id"].to_list() == [first.label_id] and undo.kind == "retraction"
    # undoing twice appends nothing more
    assert store.retract(first.label_id, alice).event_id == undo.event_id
    assert store.count_events() == {"label": 2, "retraction": 1}


def test_refusals_say_why(store_url: str, lake: Lake, clock: Clock) -> None:
    write_served(lake, 3)
    store = label_store(open_store(store_url), lake, clock)
    accounts = Accounts(store.engine, clock)
    accounts.add_reviewer("alice", "reviewer", PASSWORD)
    bob = accounts.add_reviewer("bob", "reviewer", PASSWORD)
    with pytest.raises(UnknownRecommendation, match="'rec-nowhere' is not a served recommendation"):
        store.record_label("alice", "rec-nowhere", "useful", 0.5)
    with pytest.raises(LabelError, match="label must be one of useful, not_useful"):
        store.record_label("alice", "rec-00000", "meh", 0.5)
    for bad in (1.5, -0.1, "nan", "high", None):
        with pytest.raises(LabelError, match="confidence"):
            store.record_label("alice", "rec-00000", "useful", bad)
    label = store.record_label("alice", "rec-00000", "useful", 1)
    with pytest.raises(AlreadyLabeled, match="undo that label"):
        store.record_label("alice", "rec-00000", "not_useful", 1)
    with pytest.raises(NotFound):  # bob cannot undo alice's label
        store.retract(label.label_id, bob)
    assert store.retract(label.label_id, Reviewer("root", "admin")).kind == "retraction"
    with pytest.raises(LabelError, match="already exists"):
        accounts.add_reviewer("alice", "admin", PASSWORD)
    with pytest.raises(LabelError, match="role must be one of"):
        accounts.add_reviewer("carol", "owner", PASSWORD)
    with pytest.raises(LabelError, match="at least 10 characters"):
        accounts.add_reviewer("carol", "reviewer", "short")
    assert store.count_events() == {"label": 1, "retraction": 1}


def test_passwords_are_hashed_with_argon2(store_url: str) -> None:
    engine = open_store(store_url)
    accounts = Accounts(engine)
    accounts.add_reviewer("alice", "admin", PASSWORD)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM reviewers")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate("alice", PASSWORD) == Reviewer("alice", "admin")
    assert accounts.authenticate("alice", PASSWORD + "x") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    accounts.set_active("alice", False)
    assert accounts.authenticate("alice", PASSWORD) is None and accounts.reviewer("alice") is None


def test_a_retried_request_with_the_same_label_id_labels_once(store_url: str, lake: Lake) -> None:
    write_served(lake, 2)
    store = label_store(open_store(store_url), lake)
    a = store.record_label("alice", "rec-00000", "useful", 0.7, label_id="lbl-key-1")
    b = store.record_label("alice", "rec-00000", "useful", 0.7, label_id="lbl-key-1")
    assert a.event_id == b.event_id and store.count_events() == {"label": 1}


def test_migration_upgrades_an_existing_store_in_place(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:  # a store of an earlier fbloop: the registry only
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    assert "label_events" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    upgraded = open_store(store_url)
    tables = set(sa.inspect(upgraded).get_table_names())
    assert {"weights_versions", "reviewers", "label_events", "label_rejects"} <= tables
    with upgraded.connect() as conn:
        versions = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    assert {"0003", "0005_sessions", "0006_sign_in_failures"} <= versions
    assert {"reviewer_sessions", "sign_in_failures"} <= tables


LABEL_STUDIO = [
    {
        "id": 11,
        "data": {"recommendation_id": "rec-00001"},
        "annotations": [
            {
                "id": 101,
                "completed_by": 7,
                "was_cancelled": False,
                "created_at": "2026-01-05T09:00:00.000000Z",
                "updated_at": "2026-01-05T09:30:00.000000Z",
                "result": [
                    {"from_name": "verdict", "type": "choices", "value": {"choices": ["Useful"]}},
                    {"from_name": "sure", "type": "rating", "value": {"rating": 4}},
                    {"from_name": "note", "type": "textarea", "value": {"text": ["fits the brief"]}},
                ],
            },
            {
                "id": 102,
                "completed_by": {"id": 8, "email": "eve@example.com"},
                "was_cancelled": False,
                "created_at": "2026-01-05T10:00:00Z",
                "result": [
                    {"type": "choices", "value": {"choices": ["Not useful"]}},
                    {"type": "number", "value": {"number": 0.3}},
                ],
            },
            {"id": 103, "completed_by": 9, "was_cancelled": True, "result": []},
        ],
    },
    {
        "id": 12,
        "data": {"recommendation_id": "rec-unknown"},
        "annotations": [
            {
                "id": 104,
                "completed_by": 7,
                "created_at": "2026-01-05T11:00:00Z",
                "result": [{"type": "choices", "value": {"choices": ["useful"]}}],
            }
        ],
    },
    {
        "id": 13,
        "data": {"recommendation_id": "rec-00002"},
        "annotations": [
            {
                "id": 105,
                "completed_by": 7,
                "created_at": "2026-01-05 11:00:00",
                "result": [{"type": "choices", "value": {"choices": ["Useful"]}}],
            }
        ],
    },
]


def test_label_studio_import_is_idempotent_and_quarantines_unknown_ids(
    store_url: str, lake: Lake, tmp_path: Path
) -> None:
    write_served(lake, 3)
    store = label_store(open_store(store_url), lake)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(LABEL_STUDIO))
    first = import_labels(store, path, "label-studio")
    assert (first.read, first.imported, first.cancelled, first.quarantined) == (5, 2, 1, 2)
    assert first.quarantined_by_reason == {"malformed_value": 1, "unknown_recommendation": 1}
    labels = {h["label_id"]: h for h in store.history(None)}
    assert set(labels) == {"ls-11-101", "ls-11-102"}
    assert labels["ls-11-101"]["reviewer_id"] == "label-studio:7"
    assert labels["ls-11-101"]["confidence"] == pytest.approx(0.8)
    assert labels["ls-11-101"]["comment"] == "fits the brief"
    assert labels["ls-11-101"]["labeled_at"] == "2026-01-05T09:30:00.000000+00:00"
    assert labels["ls-11-102"]["reviewer_id"] == "label-studio:8"  # the id, never the e-mail
    assert labels["ls-11-102"]["label_value"] == "not_useful"
    second = import_labels(store, path, "label-studio")
    assert (second.imported, second.already_imported) == (0, 2)
    assert store.count_events() == {"label": 2}
    rejects = store.rejects_recorded_on(datetime.now(UTC).date())
    assert len(rejects) == 2  # quarantined once, not once per import
    assert "rec-unknown" in next(r["reason"] for r in rejects if r["reason_code"] == "unknown_recommendation")


def test_csv_import_reuses_the_landing_contract(store_url: str, lake: Lake, tmp_path: Path) -> None:
    write_served(lake, 3)
    store = label_store(open_store(store_url), lake)
    path = tmp_path / "labels.csv"
    pl.DataFrame(
        {
            "label_id": ["c1", "c2", "c3", "c1", "c4"],
            "reviewer_id": ["r1", "r2", "r1", "r1", "r2"],
            "recommendation_id": ["rec-00000", "rec-00000", "rec-zzz", "rec-00001", "rec-00001"],
            "label_value": ["useful", "not_useful", "useful", "useful", "maybe"],
            "confidence": ["0.9", "0.5", "1", "1", "0.5"],
            "labeled_at": ["2026-01-05T10:00:00Z"] * 5,
            "comment": ["x'); DROP TABLE label_events; --", "", "", "", ""],
        }
    ).write_csv(path)
    result = import_labels(store, path, "csv")
    assert (result.read, result.imported, result.quarantined) == (5, 2, 3)
    assert result.quarantined_by_reason == {"duplicate": 1, "invalid_value": 1, "unknown_recommendation": 1}
    assert import_labels(store, path, "csv").imported == 0
    assert store.label("c1").comment == "x'); DROP TABLE label_events; --"  # type: ignore[union-attr]
    path.write_text("label_id,reviewer_id\n1,2\n")
    with pytest.raises(ImportFileError, match="missing column"):
        import_labels(store, path, "csv")


def test_csv_import_quarantines_a_bad_line_alone(store_url: str, lake: Lake, tmp_path: Path) -> None:
    """One undecodable line and one short line cost only themselves, each named by its line."""
    write_served(lake, 3)
    store = label_store(open_store(store_url), lake)
    header = b"label_id,reviewer_id,recommendation_id,label_value,confidence,labeled_at,comment\n"
    good = [f"g{i},r1,rec-0000{i % 3},useful,0.9,2026-01-05T10:00:00Z,ok\n".encode() for i in range(6)]
    path = tmp_path / "labels.csv"
    path.write_bytes(
        header
        + good[0]
        + good[1]
        + b"b1,r1,rec-00000,useful,0.9,2026-01-05T10:00:00Z,caf\xe9\n"
        + good[2]
        + good[3]
        + b"b2,r1,rec-00001\n"
        + good[4]
        + good[5]
    )
    result = import_labels(store, path, "csv")
    assert (result.read, result.imported, result.quarantined) == (8, 6, 2)
    assert result.quarantined_by_reason == {"invalid_utf8": 1, "unparseable_line": 1}
    assert [s["where"] for s in result.samples] == ["line 4", "line 7"]
    assert {h["label_id"] for h in store.history(None)} == {f"g{i}" for i in range(6)}
    path.write_text("label_id;reviewer_id;recommendation_id\n1;2;3\n")
    with pytest.raises(ImportFileError, match="comma-separated"):
        import_labels(store, path, "csv")


def test_krippendorff_alpha_matches_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal data: alpha = 0.743
    n = None
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3]
    c = [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]
    assert krippendorff_alpha_nominal(zip(a, b, c, d, strict=True)) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha_nominal([["u", "u"], ["n", "n"]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([["u", "n"], ["n", "u"]]) < 0
    assert krippendorff_alpha_nominal([["u"], ["n"]]) is None


def test_label_agreement_counts_each_reviewer_once_per_item() -> None:
    labels = pl.DataFrame(
        {
            "recommendation_id": ["a", "a", "a", "b", "b", "c"],
            "reviewer_id": ["r1", "r1", "r2", "r1", "r2", "r1"],
            "label_value": ["not_useful", "useful", "useful", "useful", "not_useful", "useful"],
        }
    )
    result = label_agreement(labels)
    assert result["items_multiply_labeled"] == 2 and result["pairs"] == 2
    assert result["pairwise_agreement"] == pytest.approx(0.5)


def test_served_index_sees_a_serving_log_that_lands_later(lake: Lake) -> None:
    served = ServedRecommendations(lake)
    assert "rec-00001" not in served
    write_served(lake, 3)
    assert "rec-00001" in served and "rec-00009" not in served
    write_served(lake, 10, day="2026-01-06")
    assert "rec-00009" in served and served.latest_days(1) == [date(2026, 1, 6)]
