"""The three privacy modes end to end (issue 18, item 2): a scan per mode of every file under the
data directory, and of fbloop's database, for the canaries the simulator plants.

The simulator marks a few consented conversions each day with a canary subject id and a canary
URL, and a few labels with a canary comment (a phone number in free text). Landing files are the
upstream systems' and keep them; `simulation/` is the simulator's own truth. Everywhere else:

- `aggregated`: no canary at all, not even in the raw layer, and no pseudonym of a canary
  subject; outcomes still arrive, as one count per recommendation, event type, source and side
  of the attribution window, and datasets built from them hold the same sums as in
  `pseudonymized` mode;
- `pseudonymized`: canaries only in the raw layer (`raw_outcome_signals`, `raw_labels`); the
  canary subjects appear in `normalized_feedback` as their keyed pseudonyms only;
- `identifiable`: the canary subjects (consented) keep their raw ids in `normalized_feedback`;
  URLs and comments stay in the raw layer; a subject without consent is nowhere past it.
"""

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from fbloop_assets.lib.common.store import database_url
from fbloop_assets.lib.dataset.examples import OUTCOME_COLUMNS
from fbloop_tests.conftest import TEST_KEY_HEX
from fbloop_tests.privacy_world import files_holding, run_world, tables_holding

RAW_LAYER = ("warehouse/raw_outcome_signals/", "warehouse/raw_labels/")


def _pseudonym(raw: str) -> str:
    return hmac.new(bytes.fromhex(TEST_KEY_HEX), raw.encode(), hashlib.sha256).hexdigest()


def _canaries(manifest: dict[str, Any], kind: str) -> list[str]:
    return [v for day in manifest["days"].values() for v in day["canaries"][kind]]


def _outside_landing(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {n: [f for f in files if not f.startswith("landing/")] for n, files in found.items()}


def _feedback(data_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(sorted((data_dir / "warehouse" / "normalized_feedback").glob("*.parquet")))


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> tuple[Path, dict[str, Any]]:
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    manifest = run_world(tmp_path, f'[privacy]\nmode = "{mode}"\n', monkeypatch, days=2)
    data_dir = tmp_path / "data"
    subjects = _canaries(manifest, "subject_ids")
    assert len(subjects) == 6 and len(_canaries(manifest, "comments")) == 6
    landing = files_holding(data_dir, subjects)
    assert all(any(f.startswith("landing/") for f in landing[s]) for s in subjects)  # planted
    return data_dir, manifest


def _no_canary_in_the_database(data_dir: Path, needles: list[str]) -> None:
    assert tables_holding(database_url(data_dir), needles) == {n: set() for n in needles}


@pytest.mark.slow
def test_aggregated_mode_keeps_no_subject_level_value_past_the_landing_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, manifest = _world(tmp_path, monkeypatch, "aggregated")
    subjects = _canaries(manifest, "subject_ids")
    needles = [*subjects, *map(_pseudonym, subjects), *_canaries(manifest, "landing_urls")]
    needles += _canaries(manifest, "comments")
    assert _outside_landing(files_holding(data_dir, needles)) == {n: [] for n in needles}
    _no_canary_in_the_database(data_dir, needles)
    feedback = _feedback(data_dir)
    assert (
        feedback.select("subject_key", "age_bucket", "subject_country").null_count().row(0)
        == (feedback.height,) * 3
    )
    conversions = feedback.filter(pl.col("event_type") == "conversion")
    assert conversions.height > 0 and conversions["value"].sum() > 0  # counted, not lost
    raw = pl.read_parquet(sorted((data_dir / "warehouse" / "raw_outcome_signals").glob("*.parquet")))
    assert set(raw["subject_id"].drop_nulls().unique()) == {"<redacted>"}
    assert raw.select("subject_age", "landing_url").null_count().row(0) == (raw.height, raw.height)
    outcomes = feedback.filter(pl.col("kind") == "outcome")
    assert outcomes["feedback_id"].str.starts_with("agg:").all()
    groups = outcomes.select("partition_date", "recommendation_id", "event_type", "source")
    assert groups.n_unique() >= outcomes.height / 2  # at most "in" and "late" per group
    assert outcomes.height < raw.height / 2  # counts, not a row per signal


def _examples_by_window(data_dir: Path) -> dict[tuple[str, ...], pl.DataFrame]:
    """Every FeedbackDataset version's outcome sums and labels, by its serving days."""
    columns = ["recommendation_id", *OUTCOME_COLUMNS.values(), "n_labels", "label_useful", "holdout"]
    found = {}
    for folder in sorted((data_dir / "datasets").iterdir()):
        manifest = json.loads((folder / "manifest.json").read_text())
        examples = pl.read_parquet(folder / "examples.parquet", columns=columns)
        found[tuple(manifest["serving_days"])] = examples.sort("recommendation_id")
    return found


@pytest.mark.slow
def test_aggregated_mode_builds_the_datasets_pseudonymized_mode_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts lose nothing the loop uses: per recommendation the same outcome sums and labels."""
    built = {}
    for mode in ("pseudonymized", "aggregated"):
        monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
        (tmp_path / mode).mkdir()
        # one-day windows: a dataset from day 2 on, and late conversions on the other side of it
        config = f'[privacy]\nmode = "{mode}"\n[attribution_windows_days]\n'
        config += "".join(f"{event} = 1.0\n" for event in OUTCOME_COLUMNS)
        run_world(tmp_path / mode, config, monkeypatch, days=4)
        built[mode] = _examples_by_window(tmp_path / mode / "data")
    assert built["aggregated"].keys() == built["pseudonymized"].keys()
    filled = {window: e for window, e in built["aggregated"].items() if e.height}
    assert len(filled) == 3 and all(e["conversions"].sum() > 0 for e in filled.values())
    for window, examples in built["aggregated"].items():
        assert examples.equals(built["pseudonymized"][window]), window


@pytest.mark.slow
def test_pseudonymized_mode_keeps_canaries_in_the_raw_layer_and_pseudonyms_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, manifest = _world(tmp_path, monkeypatch, "pseudonymized")
    raw_values = [
        v for kind in ("subject_ids", "landing_urls", "comments") for v in _canaries(manifest, kind)
    ]
    found = _outside_landing(files_holding(data_dir, raw_values))
    assert all(found[v] and all(f.startswith(RAW_LAYER) for f in found[v]) for v in raw_values), found
    _no_canary_in_the_database(data_dir, raw_values)
    keys = set(_feedback(data_dir)["subject_key"].drop_nulls())
    assert {_pseudonym(s) for s in _canaries(manifest, "subject_ids")} <= keys


@pytest.mark.slow
def test_identifiable_mode_keeps_raw_ids_of_consenting_subjects_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, manifest = _world(tmp_path, monkeypatch, "identifiable")
    subjects = _canaries(manifest, "subject_ids")
    found = _outside_landing(files_holding(data_dir, subjects))
    assert all(any(f.startswith("warehouse/normalized_feedback/") for f in found[s]) for s in subjects)
    text = [*_canaries(manifest, "landing_urls"), *_canaries(manifest, "comments")]
    found = _outside_landing(files_holding(data_dir, text))
    assert all(found[v] and all(f.startswith(RAW_LAYER) for f in found[v]) for v in text), found
    raw = pl.read_parquet(sorted((data_dir / "warehouse" / "raw_outcome_signals").glob("*.parquet")))
    without = set(raw.filter(~pl.col("consent_analytics").fill_null(False))["subject_id"].drop_nulls())
    assert without  # the world has subjects without consent
    keys = set(_feedback(data_dir)["subject_key"].drop_nulls())
    assert keys and not keys & without
    assert set(subjects) <= keys
