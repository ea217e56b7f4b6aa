"""Erasure on request and consent withdrawal, end to end through the CLI (issue 18, item 1).

A simulated world is run, exported, and then a subject the simulator planted (a canary) and an
ordinary subject seen on several days are erased: afterwards no file under the data directory
holds their raw ids or pseudonyms, fbloop's database holds the pseudonyms only in the erasure
record, a re-run of every affected day keeps them out, and `fbloop audit erasures` names the
superseded datasets and their replacements. On SQLite and on PostgreSQL.
"""

import hashlib
import hmac
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from fbloop_assets.cli import main
from fbloop_assets.lib.common.store import database_url
from fbloop_tests.conftest import TEST_KEY_HEX
from fbloop_tests.privacy_world import cli_json, files_holding, run_world, tables_holding


def pseudonym(raw: str) -> str:
    return hmac.new(bytes.fromhex(TEST_KEY_HEX), raw.encode(), hashlib.sha256).hexdigest()


def _ordinary_subject(data_dir: Path, day: str) -> str:
    """A consenting subject (not a canary) whose signal arrived on ``day``."""
    raw = pl.read_parquet(data_dir / "warehouse" / "raw_outcome_signals" / f"{day}.parquet")
    consenting = raw.filter(pl.col("consent_analytics") & ~pl.col("subject_id").str.contains("CANARY"))
    return str(consenting["subject_id"].sort()[0])


def _erase_and_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = run_world(tmp_path, "", monkeypatch)
    data_dir = tmp_path / "data"
    url = database_url(data_dir)
    first = min(manifest["days"])
    canary = manifest["days"][first]["canaries"]["subject_ids"][0]
    ordinary = _ordinary_subject(data_dir, max(manifest["days"]))
    subjects = [canary, ordinary]
    needles = [*subjects, *map(pseudonym, subjects)]
    before = files_holding(data_dir, needles)
    assert before[canary] and before[pseudonym(canary)] and before[pseudonym(ordinary)]
    export = cli_json(["export", "--days-back", "3", "--end-date", max(manifest["days"])])

    ids_file = tmp_path / "subjects.txt"
    ids_file.write_text(ordinary + "\n")
    monkeypatch.setenv("FBLOOP_ACTOR", "dpo-1")
    reason = "GDPR art. 17 request 4711"
    argv = [
        "erase",
        "--subject",
        canary,
        "--subjects-file",
        str(ids_file),
        "--reason",
        reason,
    ]
    erased = cli_json([*argv, "--rewrite-exports"])["erased"]
    assert {e["pseudonym"] for e in erased} == {pseudonym(s) for s in subjects}
    by_key = {e["pseudonym"]: e for e in erased}
    assert by_key[pseudonym(canary)]["days"] == [first]
    assert by_key[pseudonym(ordinary)]["days"] == [max(manifest["days"])]
    assert all(e["rows_removed"] > 0 and e["datasets_superseded"] for e in erased)
    assert all(
        e["exports_holding"] == [{"id": export["export_record"], "file": export["file"]}] for e in erased
    )
    assert all(len(e["exports_rewritten"]) == 1 for e in erased)

    assert files_holding(data_dir, needles) == {n: [] for n in needles}
    in_db = tables_holding(url, needles)
    assert all(in_db[s] == set() for s in subjects)  # the raw id: nowhere at all
    assert all(in_db[pseudonym(s)] == {"subject_erasures"} for s in subjects)

    days = sorted({d for e in erased for d in e["days"]} | set(manifest["days"]))
    for day in days:
        summary = cli_json(["run", "--date", day])
        assert "no_personal_data" not in " ".join(summary["blocked"])
    assert files_holding(data_dir, needles) == {n: [] for n in needles}

    audit = cli_json(["audit", "erasures"])["erasures"]
    assert [a["actor"] for a in audit] == ["dpo-1", "dpo-1"]
    assert {a["reason"] for a in audit} == {reason}
    for entry in audit:
        superseded = {d["version"] for d in entry["datasets"]}
        assert entry["datasets"] and all(d["replacement"] for d in entry["datasets"])
        assert not superseded & {d["replacement"] for d in entry["datasets"]}
        for d in entry["datasets"]:
            record = data_dir / "warehouse" / "feedback_dataset" / f"{d['loop_day']}.json"
            assert d["replacement"] in record.read_text()
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["audit", "erasures"]) == 0
    assert "superseded ->" in out.getvalue() and canary not in out.getvalue()

    engine = sa.create_engine(url)
    with engine.begin() as connection, pytest.raises(sa.exc.DBAPIError, match="append-only"):
        connection.execute(sa.text("DELETE FROM subject_erasures"))
    engine.dispose()


@pytest.mark.slow
def test_erasure_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    _erase_and_check(tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.postgres
def test_erasure_on_postgres(
    fresh_postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FBLOOP_DATABASE_URL", fresh_postgres_url)
    _erase_and_check(tmp_path, monkeypatch)
    assert not (tmp_path / "data" / "fbloop.sqlite").exists()


def test_withdrawal_suppresses_from_then_on_without_touching_what_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = run_world(tmp_path, "", monkeypatch, days=1)
    data_dir = tmp_path / "data"
    day = next(iter(manifest["days"]))
    subject = _ordinary_subject(data_dir, day)
    landing_before = files_holding(data_dir, [subject])[subject]
    done = cli_json(["consent", "withdraw", "--subject", subject])
    assert done["pseudonym"] == pseudonym(subject) and done["kind"] == "withdrawal"
    assert files_holding(data_dir, [subject])[subject] == landing_before  # nothing stored touched
    cli_json(["run", "--date", day])
    raw = pl.read_parquet(data_dir / "warehouse" / "raw_outcome_signals" / f"{day}.parquet")
    assert subject not in raw["subject_id"].to_list()
    feedback = pl.read_parquet(data_dir / "warehouse" / "normalized_feedback" / f"{day}.parquet")
    assert pseudonym(subject) not in feedback["subject_key"].to_list()
    (record,) = cli_json(["audit", "erasures"])["erasures"]
    assert (record["kind"], record["rows_removed"], record["datasets"]) == ("withdrawal", 0, [])
