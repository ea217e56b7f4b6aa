"""The day's slates from the slate log, ingested like a landing file and joined to the landed ones.

Recommendations reach the loop two ways: serving-log files in ``landing/recommendations/<day>/``
(the demo, other recommenders) and the slate log in fbloop's database (`fbloop suggest`, the HTTP
API). Logged rows pass the same typing and schema checks as a landing file named `LOG_FILE`
(row = position in logging order); a recommendation id a landing file delivered first that day
is a duplicate, quarantined as in any file.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from fbloop_assets.lib.ingest.day import DayIngest, check_schema, split_duplicates, type_rows
from fbloop_assets.lib.ingest.landing import COLUMNS
from fbloop_assets.lib.ingest.rejects import concat_rejects

LOG_FILE = "slate_log"  # the `landing_file` of recommendations that came from the slate log


def add_logged_slates(landed: DayIngest, logged: pl.DataFrame, day: date, stage: str) -> DayIngest:
    """The day's recommendations: landing files first, then the rows the slate log holds for ``day``."""
    raw = logged.select(c.name for c in COLUMNS["recommendations"])
    rows = pl.int_range(1, raw.height + 1, dtype=pl.Int64, eager=True)
    typed, malformed = type_rows(raw, rows, LOG_FILE, "recommendations", stage)
    good, invalid = check_schema(typed, "recommendations", day, stage)
    valid, duplicates = split_duplicates(pl.concat([landed.valid, good]), "recommendations", stage)
    return DayIngest(
        valid=valid,
        rejects=concat_rejects([landed.rejects, malformed, invalid, duplicates]),
        files=[*landed.files, *([LOG_FILE] if raw.height else [])],
        rows_read=landed.rows_read + raw.height,
    )
