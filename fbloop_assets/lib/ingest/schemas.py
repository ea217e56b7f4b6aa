"""Pandera (polars) schemas of the validated landing sources.

A schema is built per arrival day because "not in the future" depends on the day: nothing that
arrived on day D can have happened after D ends. Type coercion happens before (see `ingest`):
these schemas see correctly typed columns and judge nulls and domains. Same-day duplicate ids
are separated before validation too, so that the first copy of a row survives; that is why the
id columns carry no ``unique`` check here (it would cost a hash of every id and never fire).
"""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl

from fbloop_assets.lib.ingest.landing import AGE_BUCKETS, COLUMNS, EVENT_TYPES, LABEL_VALUES, OBJECTIVES

FUTURE_CHECK = "not_in_future"

EVENT_TIME_COLUMN = {"recommendations": "served_at", "outcome_signals": "timestamp", "labels": "labeled_at"}


def not_in_future(day_end: datetime) -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key) < pl.lit(day_end))

    # pandera reports a custom check by its error text, so the text starts with the check's name
    return pa.Check(check, name=FUTURE_CHECK, error=f"{FUTURE_CHECK} (after {day_end.isoformat()})")


def _fraction() -> list[pa.Check]:
    return [pa.Check.in_range(0.0, 1.0)]


def _domain_checks(day_end: datetime) -> dict[str, dict[str, list[pa.Check]]]:
    return {
        "creators": {
            "follower_count": [pa.Check.ge(0)],
            "engagement_rate": _fraction(),
            "audience_age_bucket": [pa.Check.isin(AGE_BUCKETS)],
            "audience_country": [pa.Check.str_matches(r"^[A-Z]{2}$")],
            "cost_per_post": [pa.Check.ge(0)],
            "posts_per_week": [pa.Check.ge(0)],
        },
        "campaigns": {
            "objective": [pa.Check.isin(OBJECTIVES)],
            "min_followers": [pa.Check.ge(0)],
            "max_followers": [pa.Check.ge(0)],
            "min_engagement_rate": _fraction(),
            "cadence_posts_per_week": [pa.Check.ge(0)],
            "budget": [pa.Check.ge(0)],
        },
        "recommendations": {
            "rank": [pa.Check.ge(1)],
            "propensity": [pa.Check.gt(0.0), pa.Check.le(1.0)],
            "served_at": [not_in_future(day_end)],
        },
        "outcome_signals": {
            "event_type": [pa.Check.isin(EVENT_TYPES)],
            "metric_value": [pa.Check.ge(0.0)],
            "timestamp": [not_in_future(day_end)],
            "subject_age": [pa.Check.in_range(0, 130)],
            "subject_country": [pa.Check.str_matches(r"^[A-Z]{2}$")],
        },
        "labels": {
            "label_value": [pa.Check.isin(LABEL_VALUES)],
            "confidence": _fraction(),
            "labeled_at": [not_in_future(day_end)],
        },
    }


def source_schema(source: str, day_end: datetime) -> pa.DataFrameSchema:
    """The schema a day's rows of ``source`` must satisfy (``day_end``: end of the arrival day, UTC)."""
    checks = _domain_checks(day_end)[source]
    columns = {
        col.name: pa.Column(
            col.dtype,
            checks=checks.get(col.name, []),
            nullable=not col.required,
        )
        for col in COLUMNS[source]
    }
    return pa.DataFrameSchema(columns, name=source, strict=False, ordered=False)
