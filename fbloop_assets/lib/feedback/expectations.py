"""A Great Expectations suite on one day of `normalized_feedback`, and its HTML Data Docs.

`validate_feedback` checks a day of feedback against the suite ``normalized_feedback`` (non-null
keys, known kinds and event types, value ranges, timestamps consistent with the partition day)
and returns a `FeedbackValidation`: success, statistics and one line per failed expectation.

A large day (10M rows) is too big for pandas, which Great Expectations validates on: the suite
runs on a deterministic sample of at most ``sample_rows`` rows, the rows with the smallest CRC-32
of their feedback_id (stable across processes and library versions; a null id hashes as 0, so
such rows are always in the sample). A sample cannot prove uniqueness, so feedback_id uniqueness
is checked exactly with polars on every row (ids compared wherever their hashes collide) and
added to the validation result as ``expect_column_values_to_be_unique`` on feedback_id, marked
``all rows (exact)``: it shows in the statistics and the Data Docs like any other expectation.

The Data Docs site lives under ``<data>/data_docs/``: ``site`` is a symbolic link to the latest
complete build (``builds/<id>/``, whose ``results/`` keep every day's validation result as JSON).
Each validation copies the current build, adds or replaces its day's result and page, renders
the index, and only then swaps the link, so a reader never sees a half-written site; an
exclusive file lock serializes concurrent partitions. The previous build is kept for readers
that still have it open; older ones are removed.

What this module does not do: decide severity or block anything (`defs/` turns the result into
an asset check), or validate the raw layer (pandera does that on ingestion, see `schemas`).
Great Expectations is imported inside the functions that use it: the import costs seconds.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from fbloop_assets.lib.ingest.landing import EVENT_TYPES

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

SUITE_NAME = "normalized_feedback"
SITE_NAME = "fbloop"
DATA_DOCS_DIR = "data_docs"
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
_HASH_CHUNK = 1_000_000
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


def data_docs_dir(data_root: Path) -> Path:
    """Where the Data Docs site of the data directory ``data_root`` lives."""
    return data_root / DATA_DOCS_DIR


def stable_hash(values: pl.Series) -> pl.Series:
    """CRC-32 of each value's UTF-8 bytes; a null hashes as 0. Stable across processes and versions.

    polars' own ``hash`` may change between versions, which would move a day's sample.
    """
    chunks = (values.slice(i, _HASH_CHUNK) for i in range(0, values.len(), _HASH_CHUNK))
    # bytes straight into zlib (crc32 of b"" is 0); chunked, so a 10M-row day is never one list
    parts = [
        pl.Series(list(map(zlib.crc32, c.cast(pl.Binary).fill_null(b"").to_list())), dtype=pl.UInt32)
        for c in chunks
    ]
    return pl.concat(parts).rename(values.name) if parts else pl.Series(values.name, [], dtype=pl.UInt32)


def sample_by_id(ids: pl.Series, limit: int, hashes: pl.Series | None = None) -> pl.Series:
    """Row positions of the ``limit`` rows with the smallest `stable_hash` of their id, in row order.

    Ties on the last hash value taken are broken by id, then by position.
    """
    hashes = stable_hash(ids) if hashes is None else hashes
    if hashes.len() <= limit:
        return pl.Series("row", range(hashes.len()), dtype=pl.UInt32)
    threshold = hashes.bottom_k(limit).max()
    keyed = pl.DataFrame({"h": hashes, "id": ids}).with_row_index("row")
    below = keyed.filter(pl.col("h") < threshold)
    ties = keyed.filter(pl.col("h") == threshold).sort("id", "row", nulls_last=False)
    return pl.concat([below["row"], ties["row"].head(limit - below.height)]).sort()


def duplicate_ids(ids: pl.Series, hashes: pl.Series | None = None) -> tuple[int, list[str]]:
    """(rows whose non-null id occurs more than once, a few of those ids), exact, over every row.

    Equal ids have equal hashes: only rows whose hash repeats (a few thousand CRC-32 collisions in
    10M ids) are compared by id, which is several times faster than hashing every string again.
    """
    hashes = stable_hash(ids) if hashes is None else hashes
    candidates = ids.filter(hashes.is_duplicated()).drop_nulls()
    repeated = candidates.is_duplicated()
    shown = candidates.filter(repeated).unique(maintain_order=True).head(_SAMPLE_SHOWN).to_list()
    return int(repeated.sum()), shown


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
    with _quiet():
        result = _run_suite(sample, start + timedelta(days=1), day)
        _add_uniqueness(result, ids, duplicated, duplicated_shown)
        page = _publish(result, day, docs_dir)
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


@contextmanager
def _quiet() -> Iterator[None]:
    """Great Expectations' logs (e.g. on rendering) and its own and pandas' deprecation warnings
    about its internals are noise in a daily run; progress bars are off in `_context`."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _context(build: Path | None) -> AbstractDataContext:
    """An ephemeral context without progress bars; with ``build``: results and site kept there."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    sites: dict[str, Any] = {}
    if build is not None:
        defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(build / "results"),
        }
        sites[SITE_NAME] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(build)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
        }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites=sites,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _run_suite(sample: pl.DataFrame, day_end: datetime, day: date) -> ExpectationSuiteValidationResult:
    context = _context(None)
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
    result.meta["run_id"] = _run_id(day)
    return result


def _run_id(day: date) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier

    # one result per partition day: the run time is the day itself, so a re-run replaces it
    return RunIdentifier(run_name=day.isoformat(), run_time=datetime.combine(day, time(0), tzinfo=UTC))


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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _publish(result: ExpectationSuiteValidationResult, day: date, docs_dir: Path) -> str:
    """Add the day's result to a copy of the live site, render it, swap the link; the page's path."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    builds = docs_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    live = docs_dir / "site"
    with _locked(docs_dir / ".lock"):
        previous = live.resolve() if live.is_symlink() and live.exists() else None
        if live.is_dir() and not live.is_symlink():  # a copied data dir turns the link into a folder
            previous = builds / f"copied-{uuid.uuid4().hex[:8]}"
            live.rename(previous)
        build = builds / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        if previous is not None:
            shutil.copytree(previous, build)
        context = _context(build)
        context.suites.add(feedback_suite())
        suite_key = ExpectationSuiteIdentifier(SUITE_NAME)
        key = ValidationResultIdentifier(suite_key, _run_id(day), SUITE_NAME)
        context.validation_results_store.set(key, result)
        resources: list[Any] = [key, suite_key]  # GE accepts both kinds together, its hint says otherwise
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=resources)
        link = docs_dir / f".site-{uuid.uuid4().hex}"
        link.symlink_to(Path("builds") / build.name, target_is_directory=True)
        os.replace(link, live)
        for old in builds.iterdir():
            if old not in (build, previous):
                shutil.rmtree(old, ignore_errors=True)
    return "/".join(["validations", *key.to_tuple()]) + ".html"
