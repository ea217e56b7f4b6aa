"""The loop's effect, day by day: what served, how it measured offline and live, what was held back,
and what came in. The `/audit/effect` page draws it; this module only gathers it.

- ``production`` and ``canary``: the alias history as spans (version, first and last serving day,
  why it moved), from the registry's append-only history.
- ``days``: per loop day, the offline comparison of the day's candidate with production (NDCG@5,
  precision@5, the SNIPS conversion yield and the one-sided bootstrap interval of its relative
  change, from `weights_evaluation`), the live canary review (lift per metric with its bootstrap
  interval, from `canary_review`), the guards that failed (blocked the day) or held rows back, and
  the ingestion counts: rows read per source (kept plus quarantined), quarantined by reason code,
  and outcome signals excluded for missing consent (from Dagster's event log, when given).

Reads the daily records and tables the loop wrote; writes nothing.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import polars as pl

from fbloop_assets.lib.audit.report import EventLog
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.weights.registry import AliasMove, Registry

RAW_SOURCES = {
    "recommendations": "raw_recommendations",
    "outcome_signals": "raw_outcome_signals",
    "labels": "raw_labels",
}
GUARDED = ("feedback_dataset", "weights_evaluation")


def spans(moves: list[AliasMove]) -> list[dict[str, Any]]:
    """An alias's history as spans: each version from its effective day to the next move's."""
    out: list[dict[str, Any]] = []
    for i, move in enumerate(moves):
        after = moves[i + 1] if i + 1 < len(moves) else None
        if move.to_version is None:
            continue
        out.append(
            {
                "version": move.to_version,
                "since": move.effective_day,
                "until": after.effective_day if after else None,
                "reason": move.reason,
                "actor": move.actor,
            }
        )
    return out


def _record(lake: Lake, asset: str, day: date) -> dict[str, Any] | None:
    path = lake.record_path(asset, day)
    found: dict[str, Any] | None = json.loads(path.read_text()) if path.exists() else None
    return found


def _offline(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    if not evaluation or not evaluation.get("candidate"):
        return None
    metrics = evaluation["metrics"]
    pick = ("ndcg_at_5", "precision_at_5", "snips_conversion_yield")
    regression = next((c for c in evaluation["checks"] if c["name"] == "no_regression"), None)
    return {
        "candidate": evaluation["candidate"],
        "production": evaluation["production"],
        "metrics": {m: {arm: metrics[arm].get(m) for arm in ("candidate", "production")} for m in pick},
        "snips_relative": (regression or {}).get("value", {}).get("snips_relative"),
    }


def _canary(review: dict[str, Any] | None) -> dict[str, Any] | None:
    found = (review or {}).get("review")
    if not found:
        return None
    keys = ("canary", "production", "lift", "interval", "confidence", "verdict", "slates")
    return {k: found.get(k) for k in keys}


def _guards(lake: Lake, day: date) -> dict[str, Any]:
    failed = []
    for asset in GUARDED:
        for check in (_record(lake, asset, day) or {}).get("checks", []):
            if check.get("verdict", "pass" if check.get("passed") else "fail") == "fail":
                failed.append({"asset": asset, "check": check["name"], "detail": check.get("detail", "")})
    held = lake.table_path("held_back_feedback", day)
    rows: dict[str, int] = {}
    if held.exists():
        rows = dict(pl.read_parquet(held).group_by("guard").len().sort("guard").iter_rows())
    return {"failed": failed, "rows_held_back": rows}


def _ingestion(lake: Lake, events: EventLog | None, day: date) -> dict[str, Any]:
    quarantine_path = lake.table_path("quarantine", day)
    quarantine = pl.read_parquet(quarantine_path) if quarantine_path.exists() else None
    read: dict[str, int] = {}
    for source, asset in RAW_SOURCES.items():
        path = lake.table_path(asset, day)
        kept = pl.scan_parquet(path).select(pl.len()).collect().item() if path.exists() else 0
        bad = quarantine.filter(pl.col("source") == source).height if quarantine is not None else 0
        read[source] = int(kept) + bad
    by_reason: dict[str, int] = {}
    if quarantine is not None:
        by_reason = dict(quarantine.group_by("reason_code").len().sort("reason_code").iter_rows())
    found = events.materialization("normalized_feedback", day.isoformat(), None) if events else None
    consent = (found or {}).get("metadata", {}).get("excluded_no_consent")
    return {"read": read, "quarantined": by_reason, "consent_excluded": consent}


def loop_days(lake: Lake) -> list[date]:
    """Every loop day with a decision record (`production_weights` or `feedback_dataset`)."""
    days: set[date] = set()
    for asset in ("feedback_dataset", "production_weights", "weights_evaluation"):
        folder = lake.root / "warehouse" / asset
        days |= {date.fromisoformat(p.stem) for p in folder.glob("*.json")} if folder.is_dir() else set()
    return sorted(days)


def loop_effect(lake: Lake, registry: Registry, events: EventLog | None) -> dict[str, Any]:
    """The effect of the loop over every day it ran (see the module docstring)."""
    days = []
    for day in loop_days(lake):
        days.append(
            {
                "day": day.isoformat(),
                "production_in_force": registry.in_force("production", day) or "w0",
                "canary_in_force": registry.in_force("canary", day),
                "offline": _offline(_record(lake, "weights_evaluation", day)),
                "canary": _canary(_record(lake, "canary_review", day)),
                "guards": _guards(lake, day),
                "ingestion": _ingestion(lake, events, day),
            }
        )
    return {
        "production": spans(registry.history("production")),
        "canary": spans(registry.history("canary")),
        "days": days,
    }
