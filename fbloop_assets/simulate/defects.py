"""Bad rows the simulator injects, so that the pipeline's defenses run every day.

Each bad row copies a good row and breaks it in exactly one way, so its quarantine reason is
known in advance (the manifest counts them per reason):

- ``duplicate``: an exact copy of a good row, later in the same file (the first copy survives);
- ``malformed_value``: a value that cannot be read as its type (CSV and JSONL only: a Parquet
  column has one type);
- ``missing_field``: a required value left empty;
- ``invalid_value``: a readable value outside the allowed domain;
- ``future_timestamp``: an event time after the end of the day the file arrives;
- ``unknown_recommendation``: a signal or label that refers to no served recommendation.

Every broken copy except a duplicate gets a fresh id (``<id>-bad-<kind><n>``), so it never
collides with a good row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.ingest.landing import ID_COLUMN, Reason, typed_schema

# For each source and defect: the column to break and the value that breaks it (None: empty).
_FUTURE = object()  # placeholder for "three hours after the arrival day ends"
BREAKS: dict[str, dict[Reason, tuple[str, Any]]] = {
    "recommendations": {
        Reason.MALFORMED_VALUE: ("rank", "first"),
        Reason.MISSING_FIELD: ("campaign_id", None),
        Reason.INVALID_VALUE: ("propensity", 1.5),
        Reason.FUTURE_TIMESTAMP: ("served_at", _FUTURE),
    },
    "outcome_signals": {
        Reason.MALFORMED_VALUE: ("metric_value", "n/a"),
        Reason.MISSING_FIELD: ("event_type", None),
        Reason.INVALID_VALUE: ("metric_value", -5.0),
        Reason.FUTURE_TIMESTAMP: ("timestamp", _FUTURE),
        Reason.UNKNOWN_RECOMMENDATION: ("recommendation_id", "rec-unknown"),
    },
    "labels": {
        Reason.MALFORMED_VALUE: ("confidence", "high"),
        Reason.MISSING_FIELD: ("reviewer_id", None),
        Reason.INVALID_VALUE: ("label_value", "maybe"),
        Reason.FUTURE_TIMESTAMP: ("labeled_at", _FUTURE),
        Reason.UNKNOWN_RECOMMENDATION: ("recommendation_id", "rec-unknown"),
    },
    "creators": {
        Reason.MALFORMED_VALUE: ("follower_count", "12k"),
        Reason.MISSING_FIELD: ("niche", None),
        Reason.INVALID_VALUE: ("engagement_rate", 1.7),
    },
    "campaigns": {
        Reason.MALFORMED_VALUE: ("budget", "lots"),
        Reason.MISSING_FIELD: ("brand", None),
        Reason.INVALID_VALUE: ("objective", "virality"),
    },
}
_SHORT = {
    Reason.MALFORMED_VALUE: "m",
    Reason.MISSING_FIELD: "n",
    Reason.INVALID_VALUE: "i",
    Reason.FUTURE_TIMESTAMP: "f",
    Reason.UNKNOWN_RECOMMENDATION: "u",
}


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as the text a CSV or JSONL producer would write (RFC 3339 UTC timestamps)."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            exprs.append(col.dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ").alias(name))
        else:
            exprs.append(col.cast(pl.String).alias(name))
    return frame.select(exprs)


def with_bad_rows(
    good: pl.DataFrame,
    source: str,
    day_end: datetime,
    text: bool,
    share: float,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """``good`` followed by its broken copies; text files come back as all-text columns.

    Returns the rows to write and how many bad rows of each reason were added.
    """
    if good.height == 0:
        return (as_text(good) if text else good), {}
    n = max(1, round(share * good.height))
    id_col = ID_COLUMN[source]
    typed_parts: list[pl.DataFrame] = []
    text_parts: list[pl.DataFrame] = []
    counts: dict[str, int] = {}
    for reason, (column, value) in BREAKS[source].items():
        if reason == Reason.MALFORMED_VALUE and not text:
            continue
        copies = good[rng.choice(good.height, size=n, replace=True).tolist()]
        copies = copies.with_columns(
            pl.format("{}-bad-{}{}", pl.col(id_col), pl.lit(_SHORT[reason]), pl.int_range(1, n + 1)).alias(
                id_col
            )
        )
        if reason == Reason.UNKNOWN_RECOMMENDATION:
            copies = copies.with_columns(pl.format("{}-{}", pl.lit(value), pl.col(id_col)).alias(column))
            # a subject in an unknown signal would only add personal data to the quarantine
            copies = _without_subject(copies)
        elif reason == Reason.MALFORMED_VALUE:
            text_parts.append(as_text(copies).with_columns(pl.lit(value, pl.String).alias(column)))
            counts[str(reason)] = n
            continue
        else:
            dtype = typed_schema(source)[column]
            fill = day_end + timedelta(hours=3) if value is _FUTURE else value
            copies = copies.with_columns(pl.lit(fill, dtype=dtype).alias(column))
        typed_parts.append(copies)
        counts[str(reason)] = n
    typed_parts.append(good[rng.choice(good.height, size=n, replace=False).tolist()])  # n <= height
    counts[str(Reason.DUPLICATE)] = n
    rows = pl.concat([good, *typed_parts])
    if text:
        rows = pl.concat([as_text(rows), *text_parts])
    return rows, dict(sorted(counts.items()))


def _without_subject(frame: pl.DataFrame) -> pl.DataFrame:
    personal = [c for c in ("subject_id", "subject_age", "landing_url") if c in frame.columns]
    return frame.with_columns(pl.lit(None, frame.schema[c]).alias(c) for c in personal)
