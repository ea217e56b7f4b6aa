"""Rows a data guard holds back: their schema and the result a guard returns with them.

A guard names the rows to hold back; the caller stores them flagged (`held_back_feedback`), and
datasets leave them out. Nothing is deleted: an analyst can inspect the rows and release them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fbloop_assets.lib.common.outcome import GuardOutcome

HELD_BACK_SCHEMA: dict[str, pl.DataType] = {
    "feedback_id": pl.String(),
    "guard": pl.String(),  # label_quality | outcome_anomalies
    "reason": pl.String(),
    "event_type": pl.String(),
    "reviewer_id": pl.String(),
    "creator_id": pl.String(),
    "campaign_id": pl.String(),
    "recommendation_id": pl.String(),
    "partition_date": pl.Date(),
}


def empty_held_back() -> pl.DataFrame:
    return pl.DataFrame(schema=HELD_BACK_SCHEMA)


def held_rows(rows: pl.DataFrame, guard: str, reason: pl.Expr) -> pl.DataFrame:
    return rows.with_columns(pl.lit(guard).alias("guard"), reason.alias("reason")).select(
        [pl.col(c).cast(t) for c, t in HELD_BACK_SCHEMA.items()]
    )


@dataclass(frozen=True)
class GuardResult:
    """A guard's outcome and the rows it names to hold back (`HELD_BACK_SCHEMA`)."""

    outcome: GuardOutcome
    held_back: pl.DataFrame
