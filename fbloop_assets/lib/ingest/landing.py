"""The landing-zone contract: where files land and which columns each source carries.

Upstream systems (and `fbloop simulate`) drop files into
``<data_dir>/landing/<source>/<YYYY-MM-DD>/`` where the date is the UTC day the file
*arrived*. Any number of files per day; each may be CSV (``.csv``, header row, UTF-8),
JSON Lines (``.jsonl``) or Parquet (``.parquet``). Columns are matched by name; extra
columns are ignored. Timestamps are RFC 3339 strings with an offset (``2026-01-05T10:00:00Z``)
in text formats, or timezone-aware datetimes in Parquet. A timestamp without an offset is
malformed, never guessed.

This module only names things; validation lives in `schemas` and `ingest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

SOURCES = ("creators", "campaigns", "recommendations", "outcome_signals", "labels")

EVENT_TYPES = ("impression", "engagement", "click", "conversion")
LABEL_VALUES = ("useful", "not_useful")
OBJECTIVES = ("awareness", "engagement", "conversions")
AGE_BUCKETS = ("<18", "18-25", "25-35", "35-50", "50+")
LIST_SEPARATOR = ";"  # list-valued fields (a campaign's target niches) are ";"-joined strings


class Reason(StrEnum):
    """Why a row (or a whole file) went to quarantine; the first word of every reason."""

    UNPARSEABLE_FILE = "unparseable_file"  # no reader can open the file (a corrupt Parquet file)
    WRONG_COLUMNS = "wrong_columns"  # the file has none of the source's columns (another delimiter)
    UNPARSEABLE_LINE = "unparseable_line"  # a line no reader can split into the file's fields
    INVALID_UTF8 = "invalid_utf8"  # a line of a text file that is not UTF-8
    MALFORMED_VALUE = "malformed_value"  # a value that cannot be read as its type ("n/a" as a number)
    MISSING_FIELD = "missing_field"  # a required value is empty
    INVALID_VALUE = "invalid_value"  # readable, but outside what the schema allows
    FUTURE_TIMESTAMP = "future_timestamp"  # later than the end of the day the file arrived
    DUPLICATE = "duplicate"  # the same id seen earlier the same day
    UNKNOWN_RECOMMENDATION = "unknown_recommendation"  # refers to no recommendation served recently
    BEFORE_SERVING = "before_serving"  # happened before its recommendation was served (beyond clock skew)


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    required: bool = True
    doc: str = ""


UTC_DATETIME = pl.Datetime("us", "UTC")

COLUMNS: dict[str, tuple[Column, ...]] = {
    "creators": (
        Column("creator_id", pl.String(), doc="stable creator id"),
        Column("niche", pl.String(), doc="main content niche (fashion, beauty, fitness, ...)"),
        Column("platform", pl.String(), doc="instagram | tiktok | youtube"),
        Column("follower_count", pl.Int64(), doc="followers, >= 0"),
        Column("engagement_rate", pl.Float64(), doc="engagements per impression-reaching follower, 0..1"),
        Column("audience_age_bucket", pl.String(), doc="dominant audience age bucket"),
        Column("audience_country", pl.String(), doc="dominant audience country, ISO 3166-1 alpha-2"),
        Column("cost_per_post", pl.Float64(), doc="price of one sponsored post, EUR, >= 0"),
        Column("posts_per_week", pl.Float64(), doc="organic posting cadence, >= 0"),
    ),
    "campaigns": (
        Column("campaign_id", pl.String(), doc="stable campaign id"),
        Column("brand", pl.String(), doc="brand name"),
        Column("objective", pl.String(), doc="awareness | engagement | conversions"),
        Column("target_niches", pl.String(), doc="';'-joined niches the brand wants"),
        Column("min_followers", pl.Int64(), doc="follower range filter, lower bound"),
        Column("max_followers", pl.Int64(), doc="follower range filter, upper bound"),
        Column("target_age_buckets", pl.String(), doc="';'-joined audience age buckets"),
        Column("target_countries", pl.String(), doc="';'-joined audience countries"),
        Column("min_engagement_rate", pl.Float64(), doc="minimum engagement rate filter, 0..1"),
        Column("cadence_posts_per_week", pl.Float64(), doc="sponsored posts per creator per week"),
        Column("budget", pl.Float64(), doc="total budget, EUR"),
        Column("start_date", pl.Date(), doc="first day of the campaign"),
        Column("end_date", pl.Date(), doc="last day of the campaign"),
    ),
    "recommendations": (
        Column("recommendation_id", pl.String(), doc="one served suggestion"),
        Column("request_id", pl.String(), doc="the suggestion request (slate) it belongs to"),
        Column("campaign_id", pl.String()),
        Column("creator_id", pl.String()),
        Column("rank", pl.Int64(), doc="1-based position in the slate"),
        Column("score", pl.Float64(), doc="the scorer's w . phi"),
        Column(
            "propensity",
            pl.Float64(),
            doc="probability the serving policy put this creator at this rank, (0, 1]",
        ),
        Column("weights_version", pl.String(), doc="the scorer weights version that served it"),
        Column("served_at", UTC_DATETIME),
    ),
    "outcome_signals": (
        Column("signal_id", pl.String(), doc="unique per signal, stable across re-deliveries"),
        Column("source", pl.String(), doc="system that reported it (platform_api, shop_pixel, ...)"),
        Column("event_type", pl.String(), doc="impression | engagement | click | conversion"),
        Column("metric_value", pl.Float64(), doc="count of events (>= 0)"),
        Column("timestamp", UTC_DATETIME, doc="when the events happened"),
        Column("recommendation_id", pl.String(), doc="the recommendation it is attributed to"),
        Column(
            "subject_id", pl.String(), required=False, doc="audience member (conversions only); personal data"
        ),
        Column("subject_age", pl.Int64(), required=False, doc="the subject's exact age; personal data"),
        Column("subject_country", pl.String(), required=False, doc="the subject's country"),
        Column(
            "consent_analytics", pl.Boolean(), required=False, doc="the subject consented to analytics use"
        ),
        Column("landing_url", pl.String(), required=False, doc="free text; dropped by normalization"),
    ),
    "labels": (
        Column("label_id", pl.String(), doc="unique per label event"),
        Column("reviewer_id", pl.String()),
        Column("recommendation_id", pl.String()),
        Column("label_value", pl.String(), doc="useful | not_useful"),
        Column("confidence", pl.Float64(), doc="reviewer's confidence, 0..1"),
        Column("labeled_at", UTC_DATETIME),
        Column("comment", pl.String(), required=False, doc="free text; dropped by normalization"),
    ),
}

ID_COLUMN = {
    "creators": "creator_id",
    "campaigns": "campaign_id",
    "recommendations": "recommendation_id",
    "outcome_signals": "signal_id",
    "labels": "label_id",
}


def typed_schema(source: str) -> dict[str, pl.DataType]:
    """The polars schema of a source's validated rows."""
    return {c.name: c.dtype for c in COLUMNS[source]}
