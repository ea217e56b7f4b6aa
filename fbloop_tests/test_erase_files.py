"""Removing subjects' rows from landing files and tables (`lib.audit.erase_files`), format by format.

Each rewrite keeps every other row exactly, leaves no temporary file, and leaves a file without
the subject untouched (same bytes, same modification time).
"""

import json
from datetime import date
from pathlib import Path

import polars as pl

from fbloop_assets.lib.audit.erase_files import erase_landing, erase_tables
from fbloop_assets.lib.common.lake import Lake

GONE, OTHER = "sub-0000001", "sub-0000002"


def _landing(lake: Lake, name: str) -> Path:
    folder = lake.root / "landing" / "outcome_signals" / "2026-01-01"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_csv_rows_go_with_quotes_newlines_and_broken_lines_handled(lake: Lake) -> None:
    path = _landing(lake, "a.csv")
    path.write_text(
        "signal_id,subject_id,landing_url\n"
        f's1,{GONE},"https://x.example/a,b"\n'
        f's2,{OTHER},"two\nlines"\n'
        f"s3,broken line mentioning {GONE}\n"
        "s4,,\n",
        encoding="utf-8",
    )
    removed = erase_landing(lake, [GONE, "sub-9999999"])
    assert removed == {"landing/outcome_signals/2026-01-01/a.csv": {0: 2}}
    kept = pl.read_csv(path, infer_schema=False)
    assert kept["signal_id"].to_list() == ["s2", "s4"]
    assert kept["landing_url"].to_list() == ["two\nlines", None]
    assert GONE not in path.read_text() and list(path.parent.glob(".*")) == []


def test_jsonl_and_parquet_rows_go_an_untouched_file_stays_as_it_was(lake: Lake) -> None:
    jsonl = _landing(lake, "b.jsonl")
    lines = [
        json.dumps({"signal_id": "s1", "subject_id": GONE}),
        '{"signal_id": "s2", "subj',
        json.dumps({"subject_id": OTHER}),
    ]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parquet = _landing(lake, "c.parquet")
    pl.DataFrame({"signal_id": ["s5", "s6"], "subject_id": [OTHER, GONE]}).write_parquet(parquet)
    untouched = _landing(lake, "d.parquet")
    pl.DataFrame({"signal_id": ["s7"], "subject_id": [OTHER]}).write_parquet(untouched)
    before = (untouched.read_bytes(), untouched.stat().st_mtime_ns)
    removed = erase_landing(lake, [GONE])
    assert removed == {
        "landing/outcome_signals/2026-01-01/b.jsonl": {0: 1},
        "landing/outcome_signals/2026-01-01/c.parquet": {0: 1},
    }
    assert jsonl.read_text().splitlines() == lines[1:]  # the broken line holds no id: kept
    assert pl.read_parquet(parquet)["signal_id"].to_list() == ["s5"]
    assert (untouched.read_bytes(), untouched.stat().st_mtime_ns) == before


def test_tables_lose_rows_by_raw_id_or_pseudonym_outside_landing_and_simulation(lake: Lake) -> None:
    key = "ab" * 32
    feedback = lake.table_path("normalized_feedback", date(2026, 1, 1))
    feedback.parent.mkdir(parents=True)
    pl.DataFrame({"feedback_id": ["f1", "f2", "f3"], "subject_key": [key, None, GONE]}).write_parquet(
        feedback
    )
    truth = lake.root / "simulation" / "truth" / "t.parquet"
    truth.parent.mkdir(parents=True)
    pl.DataFrame({"subject_id": [GONE]}).write_parquet(truth)
    removed = erase_tables(lake, [GONE], [key])
    assert removed == {"warehouse/normalized_feedback/2026-01-01.parquet": {0: 2}}
    assert pl.read_parquet(feedback)["feedback_id"].to_list() == ["f2"]
    assert pl.read_parquet(truth)["subject_id"].to_list() == [GONE]  # not fbloop's file
