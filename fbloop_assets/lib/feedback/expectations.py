"""A Great Expectations suite on one day of `normalized_feedback`.

`validate_feedback` checks a day of feedback against the suite ``normalized_feedback`` (non-null
keys, known kinds and event types, value ranges, timestamps consistent with the partition day)
and returns a `FeedbackValidation`: success, statistics and one line per failed expectation.
A large day runs on a stable sample of its rows (`feedback_ids`); feedback_id uniqueness is
checked exactly on every row and added to the validation result as
``expect_column_values_to_be_unique`` on feedback_id, marked ``all rows (exact)``: it shows in
the statistics and the Data Docs (`data_docs`) like any other expectation.

Normalization quarantines what the suite would refuse (unknown recommendations, events before
serving); the suite is the last line of defense, for what no rule upstream caught.

What this module does not do: decide severity or block anything (`defs/` turns the result into
an asset check), or validate the raw layer (pandera does that on ingestion, see `schemas`).
Great Expectations is imported inside the functions that use it: the import costs seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from fbloop_assets.lib.feedback.data_docs import SUITE_NAME, gx_context, publish, quiet, run_id
from fbloop_assets.lib.feedback.feedback_ids import duplicate_ids, sample_by_id, stable_hash
from fbloop_assets.lib.ingest.landing import EVENT_TYPES

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult

DEFAULT_SAMPLE_ROWS = 200_000
KEY_COLUMNS = (
    "feedback_id",
    "kind",
    "event_type",
    "recommendation_id",
    "request_id",
    "campaign_id",
    "creator_id",
    "event_at",
    "partition_date",
)
FEEDBACK_EVENT_TYPES = (*EVENT_TYPES, "label")
KINDS = ("outcome", "label")
UNIQUE_RULE = "feedback_id unique, all rows (exact)"
_SAMPLE_SHOWN = 3


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation the day failed: what it checks, on which column(s), and a one-line reason."""

    expectation: str  # the Great Expectations type, e.g. expect_column_values_to_be_between
    rule: str  # what it checks, in words
    column: str  # the column, or "a, b" for a pair of columns
    unexpected_count: int | None  # None when the expectation could not be evaluated
    unexpected_sample: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class FeedbackValidation:
    """The suite's verdict on one day. The statistics include the exact uniqueness check."""

    success: bool
    evaluated: int
    successful: int
    unsuccessful: int
    failures: tuple[FailedExpectation, ...]
    rows_validated: int  # rows the suite ran on (the sample)
    rows_total: int  # rows of the day
    duplicate_id_rows: int  # rows whose feedback_id occurs more than once, over all rows (exact)
    docs_index: Path  # the Data Docs site's index.html
    docs_page: Path  # this day's validation page


def feedback_suite() -> ExpectationSuite:
    """The suite ``normalized_feedback``; the day enters through the parameters ``day_end`` and ``days``.

    Time rules follow how normalization fills the columns: ``event_at`` is the signal's
    ``timestamp`` or the label's ``labeled_at`` and ``partition_date`` the day the row arrived.
    Ingestion refuses anything after the end of that day, but an event may precede it (a
    platform's late delivery, a Label Studio import carries the annotation's own time), so the
    lower bound is the serving of the recommendation, not the start of the day.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    exp = gx.expectations
    outcome, label = Column("kind") == "outcome", Column("kind") == "label"
    rules: list[Any] = [
        *(
            exp.ExpectColumnValuesToNotBeNull(column=c, meta={"rule": f"{c} is never null"})
            for c in KEY_COLUMNS
        ),
        exp.ExpectColumnValuesToBeInSet(
            column="event_type",
            value_set=list(FEEDBACK_EVENT_TYPES),
            meta={"rule": f"event_type is one of {', '.join(FEEDBACK_EVENT_TYPES)}"},
        ),
        exp.ExpectColumnValuesToBeInSet(
            column="kind", value_set=list(KINDS), meta={"rule": "kind is outcome or label"}
        ),
        exp.ExpectColumnValuesToBeBetween(
            column="value", min_value=0, row_condition=outcome, meta={"rule": "an outcome's value is >= 0"}
        ),
        exp.ExpectColumnValuesToBeInSet(
            column="value",
            value_set=[0.0, 1.0],
            row_condition=label,
            meta={"rule": "a label's value is 0 or 1"},
        ),
        exp.ExpectColumnValuesToBeBetween(
            column="confidence", min_value=0, max_value=1, meta={"rule": "confidence is in [0, 1] (or null)"}
        ),
        exp.ExpectColumnValuesToBeBetween(
            column="propensity",
            min_value=0,
            max_value=1,
            strict_min=True,
            meta={"rule": "propensity is in (0, 1]"},
        ),
        exp.ExpectColumnValuesToBeBetween(column="rank", min_value=1, meta={"rule": "rank is >= 1"}),
        exp.ExpectColumnValuesToBeBetween(
            column="event_at",
            max_value={"$PARAMETER": "day_end"},
            strict_max=True,
            meta={"rule": "event_at is before the end of the partition day (00:00 UTC the day after)"},
        ),
        exp.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="event_at",
            column_B="served_at",
            or_equal=True,
            meta={"rule": "event_at is not before the recommendation was served"},
        ),
        exp.ExpectColumnValuesToBeInSet(
            column="partition_date",
            value_set={"$PARAMETER": "days"},
            meta={"rule": "partition_date is the partition day"},
        ),
        exp.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="attribution_closes_at",
            column_B="served_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta={"rule": "attribution_closes_at is not before served_at (when set)"},
        ),
    ]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=rules)


def validate_feedback(
    frame: pl.DataFrame | pl.LazyFrame,
    day: date,
    docs_dir: Path,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> FeedbackValidation:
    """Validate one day of `normalized_feedback` and publish its page to the Data Docs in ``docs_dir``.

    A LazyFrame (a scan of the day's Parquet file) is read column by column: only feedback_id
    for all rows, every column for the sampled rows only.
    """
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be >= 1, got {sample_rows}")
    lazy = frame.lazy()
    ids = lazy.select(pl.col("feedback_id").cast(pl.String)).collect().to_series()
    hashes = stable_hash(ids)
    duplicated, duplicated_shown = duplicate_ids(ids, hashes)
    if ids.len() > sample_rows:
        rows = sample_by_id(ids, sample_rows, hashes)
        lazy = lazy.with_row_index("_row").filter(pl.col("_row").is_in(rows.implode())).drop("_row")
    # pandas has no date type: partition_date is compared as ISO text
    sample = lazy.with_columns(pl.col("partition_date").cast(pl.String)).collect()
    start = datetime.combine(day, time(0), tzinfo=UTC)
    with quiet():
        result = _run_suite(sample, start + timedelta(days=1), day)
        _add_uniqueness(result, ids, duplicated, duplicated_shown)
        page = publish(result, day, docs_dir, feedback_suite)
    stats = result.statistics
    return FeedbackValidation(
        success=bool(result.success),
        evaluated=int(stats["evaluated_expectations"]),
        successful=int(stats["successful_expectations"]),
        unsuccessful=int(stats["unsuccessful_expectations"]),
        failures=tuple(_failure(r) for r in result.results if not r.success),
        rows_validated=sample.height,
        rows_total=ids.len(),
        duplicate_id_rows=duplicated,
        docs_index=docs_dir / "site" / "index.html",
        docs_page=docs_dir / "site" / page,
    )


def _run_suite(sample: pl.DataFrame, day_end: datetime, day: date) -> ExpectationSuiteValidationResult:
    context = gx_context(None)
    batch = (
        context.data_sources.add_pandas("fbloop")
        .add_dataframe_asset(SUITE_NAME)
        .add_batch_definition_whole_dataframe("day")
        .get_batch(batch_parameters={"dataframe": sample.to_pandas()})
    )
    suite = context.suites.add(feedback_suite())
    result = batch.validate(
        suite,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
        expectation_parameters={"day_end": day_end, "days": [day.isoformat()]},
    )
    result.meta["run_id"] = run_id(day)
    return result


def _add_uniqueness(
    result: ExpectationSuiteValidationResult, ids: pl.Series, duplicated: int, shown: Sequence[str]
) -> None:
    """Add the exact all-rows uniqueness check to the result, and to its success and statistics."""
    from great_expectations.core import ExpectationValidationResult
    from great_expectations.expectations import ExpectColumnValuesToBeUnique

    total = ids.len()
    missing = ids.null_count()
    present = total - missing
    config = ExpectColumnValuesToBeUnique(
        column="feedback_id", meta={"rule": UNIQUE_RULE, "rows": total, "checked_with": "polars"}
    ).configuration
    share = 100.0 * duplicated / present if present else 0.0
    result.results.append(
        ExpectationValidationResult(
            success=duplicated == 0,
            expectation_config=config,
            result={
                "element_count": total,
                "missing_count": missing,
                "missing_percent": 100.0 * missing / total if total else 0.0,
                "unexpected_count": duplicated,
                "unexpected_percent": share,
                "unexpected_percent_total": 100.0 * duplicated / total if total else 0.0,
                "unexpected_percent_nonmissing": share,
                "partial_unexpected_list": list(shown),
            },
        )
    )
    passed = sum(1 for r in result.results if r.success)
    evaluated = len(result.results)
    result.success = passed == evaluated
    result.statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": passed,
        "unsuccessful_expectations": evaluated - passed,
        "success_percent": 100.0 * passed / evaluated if evaluated else None,
    }


def _failure(r: Any) -> FailedExpectation:
    config = r.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or ", ".join(kwargs[k] for k in ("column_A", "column_B") if k in kwargs)
    rule = config.meta.get("rule", config.type)
    message = _exception_message(r.exception_info)
    if message is not None:
        return FailedExpectation(config.type, rule, column, None, (), f"{rule}: not evaluated ({message})")
    count = int(r.result.get("unexpected_count") or 0)
    of = int(r.result.get("element_count") or 0)
    shown = dict.fromkeys(_show(v) for v in r.result.get("partial_unexpected_list") or [])
    sample = tuple(shown)[:_SAMPLE_SHOWN]
    where = "rows (all)" if rule == UNIQUE_RULE else "validated rows"
    example = f", e.g. {'; '.join(sample)}" if sample else ""
    reason = f"{column}: {count:,} of {of:,} {where} break '{rule}'{example}"
    return FailedExpectation(config.type, rule, column, count, sample, reason)


def _exception_message(info: Any) -> str | None:
    """The first exception message, whether GE reports one or one per failed metric."""
    if not isinstance(info, dict):
        return None
    entries = [info, *(v for v in info.values() if isinstance(v, dict))]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "exception").splitlines()[0]
    return None


def _show(value: object) -> str:
    text = " / ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
