"""The day's labels from the label store, ingested like a landing file and joined to the landed ones.

Labels reach the loop two ways: landing files (`day`) and the label store (`fbloop serve`,
`fbloop labels import`). Store labels pass the same typing and schema checks as a landing file
named `STORE_FILE` (row = position in recording order); the store's import rejects of the day
join the day's rejects.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from fbloop_assets.lib.ingest.day import DayIngest, check_schema, split_duplicates, type_rows
from fbloop_assets.lib.ingest.landing import COLUMNS
from fbloop_assets.lib.ingest.rejects import REJECT_SCHEMA, concat_rejects

STORE_FILE = "label_store"  # the `landing_file` of labels that came from the label store


def _import_rejects(rows: list[dict[str, Any]], stage: str) -> pl.DataFrame:
    """An import's quarantined rows (kept by the store) in the reject schema."""
    return pl.DataFrame(
        [
            {
                "stage": stage,
                "source": "labels",
                "landing_file": f"{STORE_FILE}:import:{r['file']}",
                "landing_row": r["file_row"],
                "reason_code": r["reason_code"],
                "reason": r["reason"],
                "record": r["record"],
            }
            for r in rows
        ],
        schema=REJECT_SCHEMA,
    )


def add_store_labels(
    landed: DayIngest,
    store_labels: pl.DataFrame,
    store_rejects: list[dict[str, Any]],
    day: date,
    stage: str,
) -> DayIngest:
    """The day's labels: landing files first, then the labels the store recorded that day.

    A label id already delivered by a landing file that day is a duplicate.
    """
    raw = store_labels.select(c.name for c in COLUMNS["labels"])
    rows = pl.int_range(1, raw.height + 1, dtype=pl.Int64, eager=True)
    typed, malformed = type_rows(raw, rows, STORE_FILE, "labels", stage)
    good, invalid = check_schema(typed, "labels", day, stage)
    valid, duplicates = split_duplicates(pl.concat([landed.valid, good]), "labels", stage)
    refused = [landed.rejects, _import_rejects(store_rejects, stage), malformed, invalid, duplicates]
    return DayIngest(
        valid=valid,
        rejects=concat_rejects(refused),
        files=[*landed.files, *([STORE_FILE] if raw.height or store_rejects else [])],
        rows_read=landed.rows_read + raw.height + len(store_rejects),
    )
