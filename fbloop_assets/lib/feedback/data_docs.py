"""The expectation suite's HTML Data Docs (a page per day, published atomically) and its GX context.

The ephemeral, quiet Great Expectations context is shared by validation and publishing.

The site lives under ``<data>/data_docs/``: ``site`` is a symbolic link to the latest complete
build (``builds/<id>/``, whose ``results/`` keep every day's validation result as JSON). Each
validation copies the current build, adds or replaces its day's result and page, renders the
index, and only then swaps the link, so a reader never sees a half-written site; an exclusive
file lock serializes concurrent partitions. The previous build is kept for readers that still
have it open; older ones are removed. Great Expectations is imported inside the functions.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

SUITE_NAME = "normalized_feedback"
SITE_NAME = "fbloop"
DATA_DOCS_DIR = "data_docs"


def data_docs_dir(data_root: Path) -> Path:
    """Where the Data Docs site of the data directory ``data_root`` lives."""
    return data_root / DATA_DOCS_DIR


def gx_context(build: Path | None) -> AbstractDataContext:
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


def run_id(day: date) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier

    # one result per partition day: the run time is the day itself, so a re-run replaces it
    return RunIdentifier(run_name=day.isoformat(), run_time=datetime.combine(day, time(0), tzinfo=UTC))


@contextmanager
def quiet() -> Iterator[None]:
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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(
    result: ExpectationSuiteValidationResult, day: date, docs_dir: Path, suite: Callable[[], ExpectationSuite]
) -> str:
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
        context = gx_context(build)
        context.suites.add(suite())
        suite_key = ExpectationSuiteIdentifier(SUITE_NAME)
        key = ValidationResultIdentifier(suite_key, run_id(day), SUITE_NAME)
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
