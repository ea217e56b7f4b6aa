"""The simulated world through the real pipeline, as a user runs it: `fbloop simulate --days 3
--seed 7`, then `fbloop run --date` per day, on the shipped SQLite and PostgreSQL instance configs.

The simulator's manifest says exactly which rows it broke and how; the pipeline must quarantine
each of them with that reason and normalize every good row (minus those without consent).
"""

import io
import json
import shutil
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.lib.common.privacy import personal_data_findings
from fbloop_assets.lib.ingest.day import read_raw
from fbloop_tests.conftest import TEST_KEY_HEX

PROJECT = Path(__file__).resolve().parents[1]
RAW_LAYER = ("raw_outcome_signals", "raw_labels")  # may hold personal data; nothing after them may


def _cli_json(argv: list[str]) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([*argv, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def simulate_and_run() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`fbloop simulate --days 3 --seed 7`, then `fbloop run` for each day; (manifest, summaries)."""
    manifest = _cli_json(["simulate", "--days", "3", "--seed", "7"])
    summaries = {day: _cli_json(["run", "--date", day]) for day in manifest["days"]}
    return manifest, summaries


def expected_quarantine(day: dict[str, Any]) -> dict[str, int]:
    expected: dict[str, int] = {}
    for source in ("creators", "campaigns", "recommendations", "outcome_signals", "labels"):
        for reason, n in day[source]["bad"].items():
            expected[f"{source}/{reason}"] = expected.get(f"{source}/{reason}", 0) + n
    for bad_file in day["bad_files"]:
        key = f"{bad_file['source']}/{bad_file['reason']}"
        expected[key] = expected.get(key, 0) + 1
    return expected


def quarantined(data_dir: Path, day: str) -> dict[str, int]:
    frame = pl.read_parquet(data_dir / "warehouse" / "quarantine" / f"{day}.parquet")
    return {f"{s}/{r}": n for s, r, n in frame.group_by("source", "reason_code").len().iter_rows()}


def expected_normalized(day: dict[str, Any]) -> int:
    signals = day["outcome_signals"]
    return signals["good"] - signals["good_without_consent"] + day["labels"]["good"]


@pytest.fixture(scope="module")
def simulated_on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, dict]]:
    root = tmp_path_factory.mktemp("simulated")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FBLOOP_DATA_DIR", str(root / "data"))
        env.setenv("FBLOOP_PSEUDONYM_KEY", TEST_KEY_HEX)
        env.setenv("DAGSTER_HOME", str(home))
        env.delenv("FBLOOP_CONFIG", raising=False)
        manifest, summaries = simulate_and_run()
    yield root / "data", manifest, summaries


def test_every_injected_bad_row_is_quarantined_with_its_reason(simulated_on_sqlite: tuple) -> None:
    data_dir, manifest, summaries = simulated_on_sqlite
    for day, delivered in manifest["days"].items():
        expected = expected_quarantine(delivered)
        assert quarantined(data_dir, day) == expected, day
        assert summaries[day]["quarantined"]["total"] == sum(expected.values())
    # the defenses run every day: each defect kind shows up on each day's signals
    for delivered in manifest["days"].values():
        assert set(delivered["outcome_signals"]["bad"]) == {
            "duplicate",
            "future_timestamp",
            "invalid_value",
            "malformed_value",
            "missing_field",
            "unknown_recommendation",
        }


def test_every_good_row_reaches_normalized_feedback(simulated_on_sqlite: tuple) -> None:
    data_dir, manifest, summaries = simulated_on_sqlite
    for day, delivered in manifest["days"].items():
        feedback = pl.read_parquet(data_dir / "warehouse" / "normalized_feedback" / f"{day}.parquet")
        assert feedback.height == expected_normalized(delivered) == summaries[day]["feedback"]["normalized"]
        assert (
            summaries[day]["feedback"]["excluded_no_consent"]
            == delivered["outcome_signals"]["good_without_consent"]
        )
        by_kind = dict(feedback.group_by("event_type").len().iter_rows())
        assert by_kind["label"] == delivered["labels"]["good"]
        assert by_kind["impression"] == delivered["outcome_signals"]["by_event_type"]["impression"]


def test_conversions_stay_incomplete_until_their_window_closes(simulated_on_sqlite: tuple) -> None:
    data_dir, manifest, _ = simulated_on_sqlite
    last = max(manifest["days"])
    feedback = pl.read_parquet(data_dir / "warehouse" / "normalized_feedback" / f"{last}.parquet")
    conversions = feedback.filter(pl.col("event_type") == "conversion")
    # three days in, no conversion's seven-day window can have closed
    assert conversions.height > 0 and not conversions["attribution_complete"].any()


def test_no_personal_data_past_the_raw_layer(simulated_on_sqlite: tuple) -> None:
    data_dir, manifest, _ = simulated_on_sqlite
    canaries = [v for day in manifest["days"].values() for values in day["canaries"].values() for v in values]
    assert len(canaries) == 27  # 3 days x (3 subject ids, 3 URLs, 3 comments)
    landing = "".join(p.read_text(errors="ignore") for p in (data_dir / "landing").rglob("*.csv"))
    assert all(c in landing for c in manifest["days"]["2026-01-01"]["canaries"]["subject_ids"])
    scanned = 0
    for path in (data_dir / "warehouse").rglob("*.parquet"):
        if path.parent.name in RAW_LAYER:
            continue
        frame = pl.read_parquet(path)
        scanned += 1
        for column, dtype in frame.schema.items():
            assert column not in ("subject_id", "subject_age", "landing_url", "comment"), (path, column)
            if dtype == pl.String:
                hits = frame.filter(pl.col(column).str.contains("CANARY|sub-[0-9]{7}"))
                assert hits.height == 0, f"{path}: {column} leaks {hits[column][0]}"
        if path.parent.name == "normalized_feedback":
            assert personal_data_findings(frame, "pseudonymized") == []
            assert frame["subject_key"].drop_nulls().len() > 0  # pseudonyms, not nothing
    assert scanned >= 12


def test_the_hidden_truth_stays_outside_the_landing_zone(simulated_on_sqlite: tuple) -> None:
    data_dir, manifest, _ = simulated_on_sqlite
    assert pl.read_parquet(data_dir / manifest["truth"]["relevance"])["relevance"].is_between(0, 1).all()
    for path in (data_dir / "landing").rglob("*.*"):
        if path.name != "partner_feed.parquet":  # the deliberately broken file
            assert "relevance" not in read_raw(path).columns, path


@pytest.mark.postgres
def test_simulated_days_on_the_postgres_instance_config(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FBLOOP_PG_URL", postgres_url)
    manifest, summaries = simulate_and_run()
    data_dir = tmp_path / "data"
    for day, delivered in manifest["days"].items():
        assert quarantined(data_dir, day) == expected_quarantine(delivered)
        assert summaries[day]["feedback"]["normalized"] == expected_normalized(delivered)
    assert not list(home.rglob("*.db"))  # nothing went to SQLite
    with dg.DagsterInstance.get() as instance:
        assert "Postgres" in type(instance.run_storage).__name__
        # the database is shared by this session's PostgreSQL tests: look for this test's runs
        assert set(manifest["days"]) <= {r.tags.get("dagster/partition") for r in instance.get_runs()}
