"""`fbloop run` on a day full of hostile files: the run succeeds, every refusal is in the quarantine.

The tiny world's day, plus a file of each kind that used to fail the day (another delimiter,
unrelated columns), lose a whole file for one line (a malformed JSON line, an invalid UTF-8 byte)
or block it (an outcome an hour before serving), and files no reader can open. Exact counts,
through the real daily job on SQLite.
"""

import json
from datetime import date

import dagster as dg
import polars as pl

from fbloop_assets.daily_run import run_day
from fbloop_assets.lib.common.lake import Lake
from fbloop_tests.conftest import write_landing
from fbloop_tests.tiny_world import DAY, write_tiny_day


def label(label_id: str) -> dict:
    return {
        "label_id": label_id,
        "reviewer_id": "rev-3",
        "recommendation_id": "rec-2",
        "label_value": "useful",
        "confidence": 0.7,
        "labeled_at": f"{DAY}T22:00:00Z",
    }


def write_hostile_files(lake: Lake) -> None:
    day = date.fromisoformat(DAY)
    signals = lake.landing_dir("outcome_signals", day)
    header = "signal_id;source;event_type;metric_value;timestamp;recommendation_id"
    (signals / "partner;export.csv").write_text(
        f"{header}\nx1;partner;click;1;{DAY}T10:00:00Z;rec-1\nx2;partner;click;1;{DAY}T10:00:00Z;rec-2\n"
    )
    write_landing(lake, "outcome_signals", DAY, "unrelated.parquet", [{"user": "u1", "clicks": 3}])
    early = {
        "signal_id": "s-early",
        "source": "platform_api",
        "event_type": "impression",
        "metric_value": "10",
        "timestamp": f"{DAY}T07:00:00Z",  # rec-1 was served at 08:00:01
        "recommendation_id": "rec-1",
    }
    write_landing(lake, "outcome_signals", DAY, "early.csv", [early])
    lines = [json.dumps(label("lh-1")), '{"label_id": "lh-2", "reviewer_id": ', json.dumps(label("lh-3"))]
    (lake.landing_dir("labels", day) / "more.jsonl").write_bytes(
        "\n".join(lines).encode()
        + b'\n{"label_id": "lh-4\xff"}\n'
        + json.dumps(label("lh-5")).encode()
        + b"\n"
    )
    cut = write_landing(lake, "creators", DAY, "catalog.parquet", [{"creator_id": "cre-9", "niche": "food"}])
    cut.write_bytes(cut.read_bytes()[:100])
    (lake.landing_dir("recommendations", day) / "serving_log.json").write_text("[]")


def test_a_hostile_day_runs_green_and_loses_nothing(lake: Lake) -> None:
    write_tiny_day(lake)
    write_hostile_files(lake)
    with dg.instance_for_test() as instance:
        summary = run_day(date.fromisoformat(DAY), instance).as_dict()
    assert summary["blocked"] == [] and summary["checks"]["expectations"] == "passed"
    assert summary["quarantined"] == {
        "total": 10,
        "duplicate": 1,  # the tiny world's own three
        "malformed_value": 1,
        "unknown_recommendation": 1,
        "wrong_columns": 2,  # the ';' file and the unrelated Parquet file
        "before_serving": 1,
        "unparseable_line": 1,
        "invalid_utf8": 1,
        "unparseable_file": 2,  # the cut Parquet file, the .json file
    }
    # the tiny world's five, and the three good labels around the two bad lines
    assert summary["feedback"]["normalized"] == 8
    quarantine = pl.read_parquet(lake.table_path("quarantine", date.fromisoformat(DAY)))
    lines = quarantine.filter(pl.col("landing_file").str.ends_with("more.jsonl"))
    assert lines.select("landing_row", "reason_code").rows() == [(2, "unparseable_line"), (4, "invalid_utf8")]
    assert lines["reason"].str.starts_with(lines["reason_code"] + ": line ").all()
    semicolon = quarantine.filter(pl.col("landing_file").str.ends_with("partner;export.csv"))["reason"][0]
    assert "the CSV contract is comma-separated" in semicolon
