"""Campaign tuning inside the daily job, and `fbloop tune` on what it left.

A few simulated days run through the real daily job (windows and evidence thresholds scaled down
so that a handful of small days give suggestions); then an owner accepts one with the CLI and
the next day's asset metadata shows the decision.
"""

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from fbloop_assets.cli import main
from fbloop_assets.daily_run import run_day
from fbloop_assets.lib.common.lake import resolve_data_dir
from fbloop_assets.simulate import simulate

PROJECT = Path(__file__).resolve().parents[1]
START = date(2026, 1, 1)
CONFIG = """
[attribution_windows_days]
impression = 1.0
engagement = 1.0
click = 1.0
conversion = 1.0
[dataset]
window_days = 2
[guards]
# tuning reads the day's FeedbackDataset, which a failed guard blocks: here the guards only report
enabled = false
[tuning]
window_days = 3
min_records = 5
min_creators = 2
min_effect = 0.0
confidence = 0.5
bootstrap_samples = 200
min_pool_size = 1
"""


def _metadata(instance: dg.DagsterInstance, day: date) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("campaign_tuning_suggestions"), asset_partitions=[day.isoformat()]
        ),
        limit=1,
    ).records
    assert records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}  # type: ignore[union-attr]


def test_suggestions_cli_and_decision_in_next_days_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    (tmp_path / "fbloop.toml").write_text(CONFIG)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FBLOOP_CONFIG", str(tmp_path / "fbloop.toml"))
    simulate(resolve_data_dir(), days=5, seed=3, start=START, signals_per_day=3000)
    with dg.DagsterInstance.get() as instance:
        for i in range(4):
            run_day(START + timedelta(days=i), instance)
        day = START + timedelta(days=3)
        before = _metadata(instance, day)
        assert before["suggestions"] > 0 and before["serving_days"]
        record = json.loads(
            (resolve_data_dir() / "warehouse/campaign_tuning_suggestions" / f"{day}.json").read_text()
        )
        # only complete days: the newest serving day is one day (the longest window) before the loop day
        assert max(record["serving_days"]) == (day - timedelta(days=1)).isoformat()
        campaign = next(c for c in record["campaigns"] if c["suggestions"])

        assert main(["tune", "--campaign", campaign["campaign_id"], "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        first = shown["campaign"]["suggestions"][0]
        assert first == campaign["suggestions"][0] | {"decision": None}
        assert main(["tune", "--campaign", campaign["campaign_id"]]) == 0
        plain = capsys.readouterr().out
        assert first["id"] in plain and "would have been" in plain

        assert main(["tune", "accept", first["id"], "--reason", "worth a try", "--json"]) == 0
        decided = json.loads(capsys.readouterr().out)
        assert decided["decision"] == "accepted" and decided["suggestion"]["id"] == first["id"]
        assert main(["tune", "accept", "ts-missing", "--reason", "x"]) == 1
        assert "unknown suggestion" in capsys.readouterr().err

        run_day(day + timedelta(days=1), instance)
        after = _metadata(instance, day + timedelta(days=1))
        assert first["id"] in after["decisions"] and "worth a try" in after["decisions"]
        assert first["id"] in after["accepted_tracking"]
        assert main(["tune", "--campaign", campaign["campaign_id"], "--date", day.isoformat(), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["campaign"]["suggestions"][0]["decision"]["decision"] == "accepted"
