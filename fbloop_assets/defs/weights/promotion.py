"""Promotion: `canary_review` and `production_weights`, the two assets that decide a loop day.

Each decides once per day and records the decision in fbloop's database (`lib.weights.decisions`);
a re-run or a backfill of the day replays it, so it never changes the registry.
"""

from collections.abc import Callable
from datetime import date, timedelta

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import md_table, partition_day
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.defs.weights.assets import _weights_table, weights_evaluation
from fbloop_assets.lib.common.lake import Lake, days_between
from fbloop_assets.lib.dataset.build import drop_held_back
from fbloop_assets.lib.weights.decisions import Decided, Decisions, LoopDecision, decide_once
from fbloop_assets.lib.weights.handoffs import EvaluationRecord, day_checks
from fbloop_assets.lib.weights.registry import ALIASES, LaterDecision, Registry
from fbloop_assets.lib.weights.rollout import review_canary, slate_outcomes, stage


def _registry_tables(registry: Registry, decision: LoopDecision) -> dict[str, dg.MetadataValue]:
    """The aliases after the day and the latest moves up to it, as Markdown tables for the UI."""
    aliases = md_table(["alias", "version"], [[a, decision.after[a] or "–"] for a in ALIASES])
    moves = [m for m in registry.history() if m.id <= decision.history_upto][-15:]
    history = md_table(
        ["at (UTC)", "alias", "from", "to", "by", "loop day", "reason"],
        [
            [m.at, m.alias, m.from_version or "–", m.to_version or "–", m.actor, m.day or "–", m.reason]
            for m in reversed(moves)
        ],
    )
    return {"aliases": aliases, "alias_history": history}


def _slates_reader(lake: Lake) -> Callable[[date, date], pl.DataFrame]:
    def slates_for(first: date, last: date) -> pl.DataFrame:
        days = days_between(first, last)
        recs = [p for d in days if (p := lake.table_path("raw_recommendations", d)).exists()]
        feedback = [p for d in days if (p := lake.table_path("normalized_feedback", d)).exists()]
        if not recs or not feedback:
            return pl.DataFrame(schema={"request_id": pl.String, "weights_version": pl.String})
        outcomes = drop_held_back(pl.scan_parquet(feedback), lake.scan_tables("held_back_feedback", days))
        return slate_outcomes(pl.scan_parquet(recs), outcomes)

    return slates_for


def _decision_metadata(decision: LoopDecision, replayed: bool) -> dict[str, dg.MetadataValue]:
    """The decision's figures: outcome, the deciding check with its value and threshold as numbers."""
    deciding = decision.failed_checks[:1]
    metadata: dict[str, dg.MetadataValue] = {
        "decision": dg.MetadataValue.text(decision.outcome),
        "promoted": dg.MetadataValue.bool(decision.promoted),
        "reason": dg.MetadataValue.text(decision.reason),
        "decided_at": dg.MetadataValue.text(decision.decided_at),
        "replayed": dg.MetadataValue.bool(replayed),
        "decided_by": dg.MetadataValue.text(
            f"{deciding[0]['asset']}/{deciding[0]['name']}" if deciding else "none"
        ),
    }
    for check in deciding:
        for part in ("value", "threshold"):
            if isinstance(check[part], int | float) and not isinstance(check[part], bool):
                metadata[f"decided_by/{part}"] = dg.MetadataValue.float(float(check[part]))
    if decision.review is not None:
        for metric, lift in decision.review["lift"].items():
            if lift is not None:
                metadata[f"canary_lift/{metric}"] = dg.MetadataValue.float(float(lift))
    return metadata


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"python"},
    code_version="2",
    deps=["raw_recommendations", "normalized_feedback", "held_back_feedback"],
)
def canary_review(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The live review of a canary that has served `canary.days` days, whatever the day's candidate.

    Compares the canary's slates with production's on live outcomes (clicks and conversions per
    1,000 impressions, bootstrap interval over slates; rows a guard held back left out): the
    canary becomes production, is rolled back with the evidence, or keeps serving (rolled back
    after `canary.max_days`). Decided once per day: a re-run replays the recorded review.
    """
    day = partition_day(context)
    # the canary and its serving days are what the previous days decided
    wait_for_earlier_days(context, {"production_weights": [day - timedelta(days=1)]})
    lake = fbloop.lake()
    registry = Registry(fbloop.store())

    def decide() -> Decided:
        try:
            outcome = review_canary(registry, day, _slates_reader(lake), fbloop.config().canary)
        except LaterDecision as exc:  # a backfill of an earlier day must not undo later decisions
            return Decided(moves=[], notes=[f"not reviewed: {exc}"])
        review = outcome.review.as_dict() if outcome.review else None
        return Decided(moves=outcome.moves, notes=outcome.notes, review=review)

    decision, replayed = decide_once(Decisions(registry.engine), registry, day, "canary_review", decide)
    return dg.MaterializeResult(
        metadata={
            "production": decision.after["production"] or "w0",
            "canary": decision.after["canary"] or "none",
            "review": decision.review["detail"] if decision.review else "none",
            **_decision_metadata(decision, replayed),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"python"},
    code_version="4",
    deps=[weights_evaluation, canary_review],
)
def production_weights(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The loop day's decision and the registry's aliases after it: staging, canary and production.

    Materialized on every loop day, promoted or not: `decision` says `promoted`, `staged`,
    `rolled_back` or `kept`, `reason` why, and `decided_by` the check that kept the candidate
    out, with its value and threshold. After `canary_review`: the day's candidate moves to
    `staging` when no guard of the day failed (the guards' recorded outcomes are read here); a
    staged version that never ran as canary starts serving `canary.share` of requests (with
    share 0 it becomes production at once). The decision is made once and recorded with the day;
    a re-run or backfill of the day replays it and moves nothing, and a day earlier than the
    newest decided day moves no alias. Every move is in the registry's append-only alias
    history (`fbloop weights history`); the first production version is `w0`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    candidate = EvaluationRecord.read(lake, day).candidate
    registry = Registry(fbloop.store())
    decisions = Decisions(registry.engine)
    review = decisions.get(day, "canary_review")
    if review is None:
        raise dg.Failure(f"canary_review is not materialized for {day}: materialize it first")
    checks = day_checks(lake, day)
    failed = [f"{c['asset']}/{c['name']} ({c['detail']})" for c in checks if c["verdict"] == "fail"]

    def decide() -> Decided:
        try:
            outcome = stage(registry, day, candidate, failed, config.canary)
        except LaterDecision as exc:
            return Decided(moves=[], notes=[f"not moved: {exc}"])
        return Decided(moves=outcome.moves, notes=outcome.notes)

    decision, replayed = decide_once(
        decisions,
        registry,
        day,
        "production_weights",
        decide,
        candidate=candidate,
        checks=checks,
        earlier=review,
    )
    production = decision.after["production"] or "w0"
    return dg.MaterializeResult(
        metadata={
            "production": production,
            "staging": decision.after["staging"] or "none",
            "canary": decision.after["canary"] or "none",
            "candidate": candidate or "none",
            "canary_review": decision.review["detail"] if decision.review else "none",
            **_decision_metadata(decision, replayed),
            "weights": _weights_table({"production": registry.load(production).weights}),
            **_registry_tables(registry, decision),
        },
        data_version=dg.DataVersion(production),
    )
