"""The tuning policy around the engine: safeguards that follow the owners' decisions, and tracking.

- **Weekly cap.** A campaign with `tuning.max_changes_per_week` changes accepted in the 7 days
  ending with the loop day gets no new suggestions, and its entry says why: the campaign needs
  time to show their effect (the engine still reports what it examined).
- **No nagging.** A change (parameter and proposed value) the owner rejected for the campaign in
  those 7 days is not proposed again; another value of the same parameter may be.
- **Tracking.** Every accepted change is followed: the campaign's KPI over the complete serving
  days after the decision, against the baseline and the expectation, so the engine itself is
  measured.

Decisions are the store's (`store.decisions`: the one in force per suggestion, with the
suggestion). One counts for loop day D when it was taken in [D + 1 day - 7 days, D + 1 day) UTC,
so a re-run of an old day ignores decisions taken after it. `tune_day` is the whole day: every
active campaign tuned under these safeguards, and the record the asset writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl

from fbloop_assets.lib.common.config import TuningConfig
from fbloop_assets.lib.scoring.features import CreatorFeatures
from fbloop_assets.lib.tuning.results import active_campaigns, objective_of, realized_kpi
from fbloop_assets.lib.tuning.suggestions import tune_campaign

# A row of `store.decisions`: suggestion_id, decision, reason, actor, at, and the suggestion.
Decision = dict[str, Any]
WEEK = timedelta(days=7)


def in_week_ending(at: str, day: date) -> bool:
    """Whether a decision taken ``at`` (ISO time) falls in the 7 days ending with ``day`` (UTC)."""
    end_of_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    return end_of_day - WEEK <= datetime.fromisoformat(at) < end_of_day


def recent_decisions(decided: list[Decision], campaign_id: str, day: date) -> list[Decision]:
    """The campaign's decisions that count for ``day``."""
    mine = (d for d in decided if d["suggestion"]["campaign_id"] == campaign_id)
    return [d for d in mine if in_week_ending(d["at"], day)]


def weekly_cap_reason(recent: list[Decision], config: TuningConfig) -> str | None:
    """Why the campaign gets no new suggestions (the cap of accepted changes is reached), else None."""
    accepted = sum(d["decision"] == "accepted" for d in recent)
    if accepted < config.max_changes_per_week:
        return None
    return (
        f"{accepted} change(s) accepted in the last 7 days (limit tuning.max_changes_per_week = "
        f"{config.max_changes_per_week}); the campaign needs time to show their effect"
    )


def rejected_changes(recent: list[Decision]) -> Callable[[str, Any], bool]:
    """``skip(parameter, proposed)`` for `tune_campaign`: true for a change rejected recently."""
    rejected = {
        (d["suggestion"]["parameter"], json.dumps(d["suggestion"]["proposed"]))
        for d in recent
        if d["decision"] == "rejected"
    }

    def skip(parameter: str, proposed: Any) -> bool:
        return (parameter, json.dumps(proposed)) in rejected

    return skip


def tracking(decided: list[Decision], results: pl.DataFrame) -> list[dict[str, Any]]:
    """For accepted suggestions: the campaign's KPI since the decision against the expectation."""
    rows = []
    for d in decided:
        if d["decision"] != "accepted":
            continue
        s = d["suggestion"]
        after = datetime.fromisoformat(d["at"]).date()
        realized = realized_kpi(results, s["campaign_id"], objective_of(s["kpi"]), after)
        value = realized["value"]
        rows.append(
            {
                "suggestion_id": s["id"],
                "campaign_id": s["campaign_id"],
                "kpi": s["kpi"],
                "baseline": s["baseline"],
                "expected": s["expected"],
                "realized": value,
                "realized_change": value / s["baseline"] - 1.0 if value is not None else None,
                "expected_change": s["expected_change"],
                "posts_since": realized["records"],
                "days_since": realized["days"],
            }
        )
    return rows


def tune_day(
    day: date,
    campaigns: pl.DataFrame,
    results: pl.DataFrame,
    catalog: CreatorFeatures | None,
    decided: list[Decision],
    config: TuningConfig,
    days_missing: list[str] | None = None,
) -> dict[str, Any]:
    """The day's record: every active campaign tuned on ``results`` under the safeguards, every
    decision in force and the tracking of the accepted ones."""
    window = sorted(results["serving_day"].unique().to_list())
    out: list[dict[str, Any]] = []
    for campaign in active_campaigns(campaigns, day).iter_rows(named=True):
        recent = recent_decisions(decided, campaign["campaign_id"], day)
        result = tune_campaign(campaign, results, day, window, config, catalog, skip=rejected_changes(recent))
        held = weekly_cap_reason(recent, config)
        out.append((replace(result, held=held, suggestions=[]) if held else result).as_dict())
    return {
        "day": day.isoformat(),
        "serving_days": [d.isoformat() for d in window],
        "days_missing": days_missing or [],
        "campaigns": out,
        "decisions": [
            {k: v for k, v in d.items() if k != "suggestion"}
            | {"campaign_id": d["suggestion"]["campaign_id"], "change": d["suggestion"]["change"]}
            for d in decided
        ],
        "tracking": tracking(decided, results),
    }


def suggestions_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every suggestion of a day's record, in campaign order."""
    return [s for c in record["campaigns"] for s in c["suggestions"]]
