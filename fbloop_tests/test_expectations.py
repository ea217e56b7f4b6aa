"""The Great Expectations suite on normalized_feedback: passes on a simulated day, names each defect,
samples large days stably but checks feedback_id uniqueness on every row, publishes Data Docs, and
reaches Dagster as the blocking `expectations` check.

Importing Great Expectations costs seconds, so the good day is validated once per module.
"""

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.defs.feedback.assets import feedback_and_quarantine
from fbloop_assets.defs.ingest.assets import ingestion_assets
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake, write_parquet
from fbloop_assets.lib.feedback.data_docs import data_docs_dir
from fbloop_assets.lib.feedback.expectations import (
    UNIQUE_RULE,
    FailedExpectation,
    FeedbackValidation,
    validate_feedback,
)
from fbloop_assets.lib.feedback.feedback_ids import duplicate_ids, sample_by_id, stable_hash
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA, normalize_day
from fbloop_assets.lib.ingest.day import empty_typed, ingest_day
from fbloop_assets.simulate import simulate
from fbloop_tests.conftest import write_landing
from fbloop_tests.tiny_world import DAY, write_tiny_day

START = date(2026, 3, 1)
SIM_DAY = START + timedelta(days=1)  # holds its own reports and the late arrivals of the first day


@pytest.fixture(scope="module")
def feedback(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The second simulated day through ingestion and normalization: outcomes and labels."""
    lake = Lake(tmp_path_factory.mktemp("sim"))
    simulate(lake.root, days=2, seed=7, start=START, signals_per_day=3_000)
    recs = pl.concat([ingest_day(lake, "recommendations", d, "t").valid for d in (START, SIM_DAY)])
    signals = ingest_day(lake, "outcome_signals", SIM_DAY, "t").valid
    labels = ingest_day(lake, "labels", SIM_DAY, "t").valid
    day = normalize_day(SIM_DAY, recs, signals, labels, FbloopConfig(), b"k" * 32).feedback
    assert set(day["kind"]) == {"outcome", "label"}
    return day


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data_docs_dir(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def good(feedback: pl.DataFrame, docs: Path) -> FeedbackValidation:
    return validate_feedback(feedback, SIM_DAY, docs)


def set_row(frame: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    """``frame`` with the given columns of one row replaced."""
    index = pl.int_range(pl.len()) == row
    return frame.with_columns(
        pl.when(index).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
        for c, v in values.items()
    )


@pytest.fixture(scope="module")
def broken(feedback: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> FeedbackValidation:
    """One validation of the day with one defect per row (and one late but valid event)."""
    kinds = feedback["kind"].to_list()
    outcome, label = kinds.index("outcome"), kinds.index("label")
    served = feedback["served_at"]
    frame = (
        feedback.pipe(set_row, outcome, value=-3.0)
        .pipe(set_row, label, value=0.5)
        .pipe(set_row, 5, event_type="share")
        .pipe(set_row, 7, event_at=datetime(2026, 3, 3, tzinfo=UTC))  # the first instant after the day
        .pipe(set_row, 9, event_at=served[9] - timedelta(seconds=1))
        .pipe(set_row, 11, creator_id=None)
        .pipe(set_row, 13, partition_date=START)
        # arrived on the day, happened the day before: normal for late reports and label imports
        .pipe(set_row, 15, event_at=served[15] + timedelta(minutes=1))
    )
    assert frame["event_at"][15] < datetime(2026, 3, 2, tzinfo=UTC)
    twice = pl.concat([frame, frame.slice(20, 1)])
    return validate_feedback(twice, SIM_DAY, data_docs_dir(tmp_path_factory.mktemp("broken")))


def failure(result: FeedbackValidation, column: str, rule: str) -> FailedExpectation:
    (found,) = [f for f in result.failures if f.column == column and rule in f.rule]
    return found


def test_a_simulated_day_passes_every_expectation(good: FeedbackValidation, feedback: pl.DataFrame) -> None:
    assert good.success, [f.reason for f in good.failures]
    assert good.failures == ()
    # 9 non-null keys, 11 more rules, and the exact all-rows uniqueness of feedback_id
    assert (good.evaluated, good.successful, good.unsuccessful) == (21, 21, 0)
    assert good.rows_validated == good.rows_total == feedback.height
    assert good.duplicate_id_rows == 0


def test_an_empty_day_passes(tmp_path: Path) -> None:
    # days without any feedback exist (the first days, a quiet campaign calendar)
    result = validate_feedback(pl.DataFrame(schema=FEEDBACK_SCHEMA), SIM_DAY, tmp_path / "data_docs")
    assert result.success and (result.rows_validated, result.rows_total) == (0, 0)


def test_each_defect_fails_one_named_expectation_on_one_row(broken: FeedbackValidation) -> None:
    assert not broken.success
    assert broken.unsuccessful == len(broken.failures) == 8
    assert all(f.unexpected_count == (2 if f.rule == UNIQUE_RULE else 1) for f in broken.failures)
    assert all(f.column in f.reason and f.rule in f.reason for f in broken.failures)


def test_a_duplicated_feedback_id_is_named(broken: FeedbackValidation, feedback: pl.DataFrame) -> None:
    found = failure(broken, "feedback_id", UNIQUE_RULE)
    assert broken.duplicate_id_rows == 2 and feedback["feedback_id"][20] in found.reason


def test_an_unknown_event_type_is_named(broken: FeedbackValidation) -> None:
    assert "share" in failure(broken, "event_type", "event_type is one of").reason


def test_a_negative_outcome_value_is_named(broken: FeedbackValidation) -> None:
    assert "-3.0" in failure(broken, "value", "an outcome's value is >= 0").reason
    assert "0.5" in failure(broken, "value", "a label's value is 0 or 1").reason


def test_an_event_after_the_partition_day_is_named(broken: FeedbackValidation) -> None:
    found = failure(broken, "event_at", "before the end of the partition day")
    assert "2026-03-03 00:00:00" in found.reason and found.unexpected_count == 1


def test_an_event_before_its_serving_is_named_but_a_late_arrival_is_not(broken: FeedbackValidation) -> None:
    # row 9 happened before it was served; row 15 the day before the partition, after serving: fine
    found = failure(broken, "event_at, served_at", "not before the recommendation was served")
    assert found.unexpected_count == 1


def test_a_missing_key_and_a_wrong_partition_date_are_named(broken: FeedbackValidation) -> None:
    assert failure(broken, "creator_id", "never null").unexpected_count == 1
    assert "2026-03-01" in failure(broken, "partition_date", "the partition day").reason


def test_the_sample_is_stable_and_uniqueness_is_still_exact(feedback: pl.DataFrame, tmp_path: Path) -> None:
    ids = feedback["feedback_id"]
    chosen = sample_by_id(ids, 200)
    # the same ids whatever the row order: the sample follows the ids, not their positions
    assert set(ids.gather(chosen)) == set(ids.reverse().gather(sample_by_id(ids.reverse(), 200)))
    outside = next(i for i in range(feedback.height) if i not in set(chosen.to_list()))
    twice = pl.concat([feedback, feedback.slice(outside, 1)])
    result = validate_feedback(twice, SIM_DAY, tmp_path / "data_docs", sample_rows=200)
    assert (result.rows_validated, result.rows_total) == (200, feedback.height + 1)
    assert result.duplicate_id_rows == 2
    assert [f.rule for f in result.failures] == [UNIQUE_RULE]


def test_uniqueness_is_exact_despite_hash_collisions() -> None:
    # "plumless" and "buckeroo" share a CRC-32; only equal ids count, nulls never do
    ids = pl.Series(["plumless", "buckeroo", "x", None, "x", None])
    assert stable_hash(ids)[0] == stable_hash(ids)[1]
    assert duplicate_ids(ids) == (2, ["x"])


def test_stable_hash_is_crc32_and_null_is_zero() -> None:
    # reference values of CRC-32 (zlib, PNG, Ethernet): "a" and "123456789"
    hashed = stable_hash(pl.Series(["a", "123456789", None]))
    assert hashed.to_list() == [0xE8B7BE43, 0xCBF43926, 0]


def test_data_docs_show_every_day_and_a_rerun_replaces_its_day(
    good: FeedbackValidation, feedback: pl.DataFrame, docs: Path
) -> None:
    assert good.docs_index == docs / "site" / "index.html"
    index = good.docs_index.read_text(encoding="utf-8")
    assert "normalized_feedback" in index and "2026-03-02" in index
    page = good.docs_page.read_text(encoding="utf-8")
    assert "feedback_id" in page and "values must be unique" in page  # the exact check shows too
    other = validate_feedback(feedback.with_columns(pl.lit(START).alias("partition_date")), START, docs)
    assert not other.success  # the events happened on the next day
    again = validate_feedback(feedback, SIM_DAY, docs)
    pages = sorted(
        p.relative_to(docs / "site").parts[2] for p in (docs / "site" / "validations").rglob("*.html")
    )
    assert pages == ["2026-03-01", "2026-03-02"]  # one page per day, the rerun replaced its own
    assert "2026-03-01" in again.docs_index.read_text(encoding="utf-8")
    assert (docs / "site").is_symlink() and len(list((docs / "builds").iterdir())) <= 2


def test_great_expectations_is_imported_only_when_a_day_is_validated() -> None:
    # the import costs seconds; loading the definitions must not pay for it
    code = (
        "import sys, fbloop_assets.lib.feedback.expectations; assert 'great_expectations' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def write_early_signal(lake: Lake) -> None:
    """One impression timestamped an hour before its recommendation rec-1 was served (08:00:01)."""
    row = {
        "signal_id": "s-early",
        "source": "platform_api",
        "event_type": "impression",
        "metric_value": "10",
        "timestamp": f"{DAY}T07:00:00Z",
        "recommendation_id": "rec-1",
        "subject_id": "",
        "subject_age": "",
        "subject_country": "",
        "consent_analytics": "",
        "landing_url": "",
    }
    write_landing(lake, "outcome_signals", DAY, "early.csv", [row])


def write_legacy_recommendation(lake: Lake) -> None:
    """A served recommendation of the day before with propensity 0, and a click on it today.

    Ingestion refuses propensity 0, so only a warehouse table written some other way (an older
    fbloop, a hand repair) can hold it: the suite is the last line of defense.
    """
    before = date.fromisoformat(DAY) - timedelta(days=1)
    served = datetime.combine(before, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    legacy = empty_typed("recommendations").vstack(
        pl.DataFrame(
            [["rec-legacy", "req-0", "camp-1", "cre-1", 1, 1.0, 0.0, "w0", served, "legacy.parquet", 1]],
            schema=empty_typed("recommendations").schema,
            orient="row",
        )
    )
    write_parquet(legacy, lake.table_path("raw_recommendations", before))
    click = {
        "signal_id": "s-legacy",
        "source": "platform_api",
        "event_type": "click",
        "metric_value": "1",
        "timestamp": f"{DAY}T07:00:00Z",
        "recommendation_id": "rec-legacy",
    }
    write_landing(lake, "outcome_signals", DAY, "legacy.csv", [click])


def materialize(lake: Lake, instance: dg.DagsterInstance, guards: str = "") -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ingestion_assets, feedback_and_quarantine],
        partition_key=DAY,
        resources={"fbloop": FbloopResource(data_dir=str(lake.root), guards=guards)},
        instance=instance,
        raise_on_error=False,
    )


def expectations_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "expectations"]
    return evaluation


def test_the_asset_reports_the_check_with_counts_and_data_docs(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    write_tiny_day(lake)
    with dg.instance_for_test() as instance:
        result = materialize(lake, instance)
    assert result.success
    evaluation = expectations_evaluation(result)
    assert evaluation.passed and evaluation.blocking
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (meta["evaluated"], meta["failed"], meta["rows_validated"], meta["rows_total"]) == (21, 0, 5, 5)
    assert meta["failed_expectations"] == "none"
    assert meta["data_docs"] == str(lake.root / "data_docs" / "site" / "index.html")
    assert Path(meta["data_docs"]).is_file()


def test_a_failed_suite_is_an_error_or_with_guards_off_a_warning(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    write_tiny_day(lake)
    write_legacy_recommendation(lake)
    with dg.instance_for_test() as instance:
        guarded = materialize(lake, instance)
        quarantined = materialized(guarded, "quarantine")
        unguarded = materialize(lake, instance, guards="off")
    assert not guarded.success  # the blocking check stops the run
    evaluation = expectations_evaluation(guarded)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "propensity is in (0, 1]" in (evaluation.description or "")
    table = evaluation.metadata["failed_expectations"].value
    assert "expect_column_values_to_be_between" in table and "propensity" in table
    # the day's quarantine was still written and materialized, before the check stopped the run
    assert quarantined["dagster/row_count"] == 3
    assert pl.read_parquet(lake.table_path("quarantine", date.fromisoformat(DAY))).height == 3
    assert unguarded.success
    evaluation = expectations_evaluation(unguarded)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN


def materialized(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_an_event_before_serving_is_quarantined_and_the_day_passes(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an hour of clock skew used to pass normalization and then block the day in the suite
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    write_tiny_day(lake)
    write_early_signal(lake)
    with dg.instance_for_test() as instance:
        result = materialize(lake, instance)
    assert result.success and expectations_evaluation(result).passed
    assert materialized(result, "quarantine")["reason/before_serving"] == 1
    assert materialized(result, "normalized_feedback")["before_serving"] == 1
    refused = pl.read_parquet(lake.table_path("quarantine", date.fromisoformat(DAY)))
    (row,) = refused.filter(pl.col("reason_code") == "before_serving").iter_rows(named=True)
    assert row["landing_file"].endswith("early.csv") and row["landing_row"] == 1
    assert "60.0 minutes before recommendation 'rec-1' was served" in row["reason"]
