"""Property: whatever lands, every row ends in the warehouse or in quarantine, and nothing raises.

Over generated landing days (`hostile_landing`: all five sources, all three formats, hostile
rows, lines and files), ingestion and normalization must account for every record: a record of
a file refused whole is that file's one reject; any other record is in the valid rows or the
rejects, by its landing row, exactly once, with the reason the contract promises; a valid signal
or label is in `normalized_feedback`, in normalization's rejects, or counted as excluded for
consent. Rows lost: none.

The CI profile is derandomized (the same examples every run); ``FBLOOP_FUZZ_PROFILE=deep`` runs
a thousand random ones.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.feedback.normalize import normalize_day
from fbloop_assets.lib.ingest.day import DayIngest, ingest_day
from fbloop_assets.lib.ingest.landing import ID_COLUMN, SOURCES
from fbloop_tests.hostile_landing import (
    DAY_START,
    FEEDBACK_DEFECTS,
    FILE_DEFECTS,
    LINE_DEFECTS,
    ROW_DEFECTS,
    LandingDay,
    LandingFile,
    landing_days,
    write_day,
)

DAY = DAY_START.date()
STAGE = {"recommendations": "raw_recommendations", "outcome_signals": "raw_outcome_signals"}
STAGE |= {"labels": "raw_labels", "creators": "creators", "campaigns": "campaigns"}
KEY = b"fuzz-key-not-secret-0123456789"
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
PROFILES = {
    "ci": settings(
        max_examples=60, derandomize=True, deadline=None, database=None, suppress_health_check=_SLOW
    ),
    "deep": settings(max_examples=1000, deadline=None, suppress_health_check=_SLOW),
}
FUZZ = PROFILES[os.environ.get("FBLOOP_FUZZ_PROFILE", "ci")]


def landing_file(file: LandingFile) -> str:
    return f"landing/{file.source}/{DAY.isoformat()}/{file.name}"


def check_ingestion(day: LandingDay, source: str, result: DayIngest) -> None:
    """Every record of every file of ``source`` is accounted for once, with its promised outcome."""
    for file in (f for f in day.files if f.source == source):
        name = landing_file(file)
        valid = set(result.valid.filter(pl.col("landing_file") == name)["landing_row"])
        refused = result.rejects.filter(pl.col("landing_file") == name)
        if file.whole is not None:
            assert refused.select("landing_row", "reason_code").rows() == [(None, file.whole)], name
            assert not valid, name
            continue
        reasons = dict(zip(refused["landing_row"], refused["reason_code"], strict=True))
        assert refused.height == len(reasons), f"{name}: a row refused twice"
        assert not valid & set(reasons), f"{name}: a row both valid and refused"
        expected = {i: r.expect for i, r in enumerate(file.records, start=1)}
        found = {i: "valid" for i in valid} | reasons
        assert found == expected, name
    files = [f for f in day.files if f.source == source]
    assert result.rows_read == sum(len(f.records) for f in files if f.whole is None)
    assert result.files == sorted(landing_file(f) for f in files)


def check_normalization(day: LandingDay, landed: dict[str, DayIngest]) -> None:
    """Every valid signal and label reaches the feedback, normalization's rejects or the consent count."""
    result = normalize_day(
        DAY,
        landed["recommendations"].valid,
        landed["outcome_signals"].valid,
        landed["labels"].valid,
        FbloopConfig(),
        KEY,
    )
    for source, prefix in (("outcome_signals", "signal:"), ("labels", "label:")):
        expected: dict[str, str] = {}
        for file in (f for f in day.files if f.source == source and f.whole is None):
            for record in file.records:
                if record.expect == "valid" and record.values is not None:
                    expected[record.values[ID_COLUMN[source]]] = record.after
        feedback = result.feedback.filter(pl.col("feedback_id").str.starts_with(prefix))
        found = dict.fromkeys(feedback["feedback_id"].str.strip_prefix(prefix), "feedback")
        for row in result.rejects.filter(pl.col("source") == source).iter_rows(named=True):
            found[json.loads(row["record"])[ID_COLUMN[source]]] = row["reason_code"]
        wanted = {k: "feedback" if v == "clamped" else v for k, v in expected.items() if v != "excluded"}
        assert found == wanted, source
        if source == "outcome_signals":
            assert result.stats["excluded_no_consent"] == sum(v == "excluded" for v in expected.values())
    clamped = sum(
        r.after == "clamped" for f in day.files if f.whole is None for r in f.records if r.expect == "valid"
    )
    assert result.stats["clamped_clock_skew"] == clamped and result.stats["deduplicated"] == 0
    assert (result.feedback["event_at"] >= result.feedback["served_at"]).all()


def account_for(day: LandingDay) -> None:
    root = Path(tempfile.mkdtemp(prefix="fbloop-fuzz-"))
    try:
        write_day(day, root / "landing")
        lake = Lake(root)
        landed = {s: ingest_day(lake, s, DAY, stage=STAGE[s]) for s in SOURCES}
        for source in SOURCES:
            check_ingestion(day, source, landed[source])
        check_normalization(day, landed)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@FUZZ
@given(day=landing_days())
def test_every_landed_row_ends_in_the_warehouse_or_in_quarantine(day: LandingDay) -> None:
    account_for(day)


@settings(PROFILES["ci"], max_examples=8)
@given(day=landing_days())
def test_a_few_hostile_days_are_accounted_for(day: LandingDay) -> None:
    # the fast tier's share of the property above
    account_for(day)


def test_the_generator_makes_every_kind_of_trouble() -> None:
    # the property is only as strong as what it is fed: the CI examples hold every kind of trouble
    seen: set[str] = set()

    @FUZZ
    @given(day=landing_days())
    def collect(day: LandingDay) -> None:
        for file in day.files:
            seen.add(f"{file.fmt}:{file.defect or 'file'}")
            seen.update(r.kind for r in file.records)
            seen.update(f"after:{r.after}" for r in file.records if r.expect == "valid")

    collect()
    expected = {f"{fmt}:{d}" for fmt, defects in FILE_DEFECTS.items() for d in (*defects, "file")}
    expected |= {f"{fmt}:{d}" for fmt, defects in LINE_DEFECTS.items() for d in defects}
    expected |= set(ROW_DEFECTS) | set(FEEDBACK_DEFECTS)
    expected |= {f"after:{a}" for a in ("feedback", "clamped", "excluded")}
    expected |= {"after:unknown_recommendation", "after:before_serving"}
    assert expected <= seen, sorted(expected - seen)
