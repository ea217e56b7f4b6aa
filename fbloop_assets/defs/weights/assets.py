"""Re-weighting, offline evaluation and promotion: `candidate_weights` → `weights_evaluation` →
`production_weights`, with the guards that gate the promotion (step size, no regression, exposure)."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import check_result, md_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import Lake, days_between, write_json
from fbloop_assets.lib.common.outcome import GuardOutcome, enforce
from fbloop_assets.lib.dataset.build import drop_held_back, load_dataset, serving_pools
from fbloop_assets.lib.scoring.features import FEATURES
from fbloop_assets.lib.weights.evaluation import METRIC_NAMES, evaluate, paired_yields
from fbloop_assets.lib.weights.guards import exposure, no_regression, step_size
from fbloop_assets.lib.weights.off_policy import LoggingPolicy
from fbloop_assets.lib.weights.registry import (
    ALIASES,
    Evaluation,
    LaterDecision,
    Registry,
    WeightsVersion,
    now_iso,
)
from fbloop_assets.lib.weights.rollout import DayOutcome, review_canary, slate_outcomes, stage
from fbloop_assets.lib.weights.training import candidate_weights as fit_candidate


def _record(lake: Lake, asset: str, day: Any) -> dict[str, Any]:
    path = lake.record_path(asset, day)
    if not path.exists():
        raise dg.Failure(f"{asset} is not materialized for {day}: materialize it first")
    return json.loads(path.read_text())


def _weights_table(columns: dict[str, dict[str, float] | None]) -> dg.MetadataValue:
    names = list(columns)
    return md_table(
        ["feature", *names],
        [[f, *((columns[n] or {}).get(f) for n in names)] for f in FEATURES],
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"scikit-learn"},
    code_version="1",
    deps=["feedback_dataset"],
    check_specs=[
        dg.AssetCheckSpec(
            "step_size",
            asset="candidate_weights",
            blocking=True,
            description="No weight moves further from production than training.max_step allows.",
        )
    ],
)
def candidate_weights(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """New scorer weights fitted on this day's FeedbackDataset, a bounded step from production.

    A propensity-weighted logistic regression over labels, conversions, clicks and engagements
    (labels and conversions weigh most; see `training.*` in fbloop.toml) gives a direction; the
    candidate moves from the production weights in force at the start of the day towards it by at
    most `training.max_step` per weight. Stored as an immutable, content-addressed WeightsVersion
    (`w-…`) with its parent (production) and dataset version in the registry.

    Its blocking check `step_size` verifies the bound on what was stored (WARN from
    `guards.step.warn_share` of the bound).
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    dataset = load_dataset(lake, _record(lake, "feedback_dataset", day)["version"])
    registry = Registry.of(lake)
    production = registry.production_before(day)
    fitted = fit_candidate(dataset.examples(), production.weights, config.training)
    enabled = config.guards.enabled
    if fitted is None:
        reason = "no evidence to fit on (empty dataset)"
        step = GuardOutcome("step_size", "pass", None, config.training.max_step, f"no candidate: {reason}")
        record: dict[str, Any] = {"candidate": None, "parent": production.version}
        record |= {"dataset_version": dataset.version, "reason": reason, "checks": [step.as_dict()]}
        write_json(record, lake.record_path("candidate_weights", day))
        context.log.warning(f"no candidate for {day}: {reason}")
        return dg.MaterializeResult(
            metadata={"candidate": "none", "reason": reason, "parent": production.version},
            data_version=dg.DataVersion(f"none-{dataset.version}"),
            check_results=[check_result(step, enabled)],
        )
    weights, fit = fitted
    version = registry.save(WeightsVersion.create(weights, production.version, dataset.version, fit))
    step = enforce(
        step_size(version.weights, production.weights, config.training.max_step, config.guards.step), enabled
    )
    record = {"candidate": version.version, "parent": production.version, "dataset_version": dataset.version}
    record |= {"checks": [step.as_dict()]}
    write_json(record, lake.record_path("candidate_weights", day))
    return dg.MaterializeResult(
        metadata={
            "candidate": version.version,
            "parent": production.version,
            "dataset_version": dataset.version,
            "weights": _weights_table(
                {"production": production.weights, "fitted direction": fit["direction"], "candidate": weights}
            ),
            "train_records": fit["train_records"],
            "evidence_rows": dg.MetadataValue.json(fit["evidence_rows"]),
            "max_step": fit["max_step"],
        },
        data_version=dg.DataVersion(version.version),
        check_results=[check_result(step, enabled)],
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"polars"},
    code_version="1",
    deps=[candidate_weights, "feedback_dataset"],
    check_specs=[
        dg.AssetCheckSpec(
            "no_regression",
            asset="weights_evaluation",
            blocking=True,
            description="The candidate is not worse than production on NDCG@5, nor on the lower bound of "
            "the bootstrap interval of its SNIPS conversion yield, beyond the tolerances.",
        ),
        dg.AssetCheckSpec(
            "exposure",
            asset="weights_evaluation",
            blocking=True,
            description="The candidate does not concentrate exposure (Gini), shrink catalog coverage or "
            "show fewer never-shown creators than production, beyond the tolerances.",
        ),
    ],
)
def weights_evaluation(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """Candidate versus production, offline, on the dataset's held-out requests.

    NDCG@5 and precision@5 on labeled recommendations; per-position and cascade IPS and SNIPS of
    each outcome per slate (`lib.weights.estimators`, weights capped at `evaluation.ips_clip`);
    exposure Gini and catalog coverage of the rankings; the records behind each figure. Its
    blocking checks `no_regression` (NDCG@5 and the lower bound of a bootstrap interval over
    slates of the SNIPS conversion yield, `guards.regression.*`) and `exposure` (Gini, coverage,
    share of never-shown creators, `guards.exposure.*`) gate the candidate: a
    failure stops the day's run before `production_weights`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    candidate_record = _record(lake, "candidate_weights", day)
    dataset = load_dataset(lake, candidate_record["dataset_version"])
    registry = Registry.of(lake)
    production = registry.production_before(day)
    examples = dataset.examples()
    holdout = examples.filter(pl.col("holdout"))
    days = sorted({d for d in holdout["serving_day"].to_list()})
    pools = serving_pools(lake, days)
    logged = LoggingPolicy.of(registry, holdout["weights_version"].to_list())
    results = {"production": evaluate(production.weights, holdout, pools, config, logged)}
    paired = None
    if candidate_record["candidate"]:
        candidate = registry.load(candidate_record["candidate"])
        results["candidate"] = evaluate(candidate.weights, holdout, pools, config, logged)
        paired = paired_yields(candidate.weights, production.weights, holdout, pools, config, logged)
    guards = config.guards
    checks = [
        enforce(o, guards.enabled)
        for o in (
            no_regression(results.get("candidate"), results["production"], paired, guards.regression),
            exposure(results.get("candidate"), results["production"], guards.exposure),
        )
    ]
    record = {
        "candidate": candidate_record["candidate"],
        "production": production.version,
        "dataset_version": dataset.version,
        "metrics": results,
        "checks": [c.as_dict() for c in checks],
    }
    write_json(record, lake.record_path("weights_evaluation", day))
    if candidate_record["candidate"]:
        day_checks = _day_checks(lake, day)
        registry.record_evaluation(
            Evaluation(
                version=candidate_record["candidate"],
                day=day.isoformat(),
                at=now_iso(),
                production=production.version,
                dataset_version=dataset.version,
                metrics=results,
                checks=day_checks,
                passed=not any(c["verdict"] == "fail" for c in day_checks),
            )
        )
    names = list(results)
    rows = [[m, *(results[n].get(m) for n in names)] for m in METRIC_NAMES]
    rows += [
        [m, *(results[n].get(m) for n in names)]
        for m in ("labeled_records", "queries", "ope_records", "ope_slates", "catalog_size", "records")
    ]
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate_record["candidate"] or "none",
            "production": production.version,
            "dataset_version": dataset.version,
            "comparison": md_table(["metric", *names], rows),
            **{
                f"{n}/{m}": float(v)
                for n in names
                for m in METRIC_NAMES
                if (v := results[n].get(m)) is not None
            },
        },
        check_results=[check_result(c, guards.enabled) for c in checks],
    )


GUARDED_ASSETS = ("held_back_feedback", "feedback_dataset", "candidate_weights", "weights_evaluation")


def _day_checks(lake: Lake, day: date) -> list[dict[str, Any]]:
    """Every guard outcome of the loop day, as the guarded assets recorded them (asset added)."""
    checks = []
    for asset in GUARDED_ASSETS:
        path = lake.record_path(asset, day)
        if path.exists():
            checks += [c | {"asset": asset} for c in json.loads(path.read_text()).get("checks", [])]
    return checks


def _registry_tables(registry: Registry) -> dict[str, dg.MetadataValue]:
    """The aliases now and the latest moves, as Markdown tables for the UI."""
    aliases = md_table(["alias", "version"], [[a, registry.current(a) or "–"] for a in ALIASES])
    moves = registry.history()[-15:]
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


def _moved(outcome: DayOutcome) -> str:
    reasons = [f"{m.alias} → {m.to_version or 'none'}: {m.reason}" for m in outcome.moves]
    return "; ".join(reasons + outcome.notes)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"python"},
    code_version="1",
    deps=["raw_recommendations", "normalized_feedback", "held_back_feedback"],
)
def canary_review(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The live review of a canary that has served `canary.days` days, whatever the day's candidate.

    Compares the canary's slates with production's on live outcomes (clicks and conversions per
    1,000 impressions, bootstrap interval over slates; rows a guard held back left out): the
    canary becomes production, is rolled back with the evidence, or keeps serving (rolled back
    after `canary.max_days`). It does not wait for the day's candidate: a run that a guard
    stopped before `production_weights` still reviews the canary.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    registry = Registry.of(lake)
    try:
        outcome = review_canary(registry, day, _slates_reader(lake), fbloop.config().canary)
    except LaterDecision as exc:  # a backfill of an earlier day must not undo later decisions
        outcome = DayOutcome(moves=[], review=None, notes=[f"not reviewed: {exc}"])
    reason = _moved(outcome) or "no canary to review"
    record = {
        "moves": [m.as_dict() for m in outcome.moves],
        "review": outcome.review.as_dict() if outcome.review else None,
        "reason": reason,
    }
    write_json(record, lake.record_path("canary_review", day))
    return dg.MaterializeResult(
        metadata={
            "production": registry.production().version,
            "canary": registry.current("canary") or "none",
            "promoted": any(m.alias == "production" for m in outcome.moves),
            "reason": reason,
            "review": outcome.review.detail if outcome.review else "none",
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"python"},
    code_version="3",
    deps=[weights_evaluation, canary_review],
)
def production_weights(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The registry's aliases after this loop day: staging, canary and production.

    After `canary_review`: the day's candidate moves to `staging` when no guard of the day
    failed (the guards' blocking checks normally stop the run before this asset; their recorded
    outcomes are read again here, so a materialization on its own cannot slip past them); a
    staged version that never ran as canary starts serving `canary.share` of requests (with
    share 0 it becomes production at once). Every move is recorded in the registry's
    append-only alias history (`fbloop weights history`); `fbloop suggest` serves with what the
    aliases say. The first production version is `w0`, the hand-set default.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    evaluation = _record(lake, "weights_evaluation", day)
    review = _record(lake, "canary_review", day)
    registry = Registry.of(lake)
    before = {a: registry.in_force(a, day) for a in ALIASES}
    failed = [f"{c['asset']}/{c['name']}" for c in _day_checks(lake, day) if c["verdict"] == "fail"]
    try:
        outcome = stage(registry, day, evaluation["candidate"], failed, config.canary)
    except LaterDecision as exc:
        outcome = DayOutcome(moves=[], review=None, notes=[f"not moved: {exc}"])
    current = registry.production()
    moves = review["moves"] + [m.as_dict() for m in outcome.moves]
    promoted = any(m["alias"] == "production" for m in moves)
    reviewed = review["reason"] if review["moves"] or review["review"] else ""
    reason = "; ".join(r for r in (reviewed, _moved(outcome)) if r) or "no alias moved"
    record = {
        "production": current.version,
        "before": before,
        "after": {a: registry.current(a) for a in ALIASES},
        "candidate": evaluation["candidate"],
        "promoted": promoted,
        "reason": reason,
        "failed_checks": failed,
        "moves": moves,
        "canary_review": review["review"],
        "notes": outcome.notes,
    }
    write_json(record, lake.record_path("production_weights", day))
    return dg.MaterializeResult(
        metadata={
            "production": current.version,
            "staging": registry.current("staging") or "none",
            "canary": registry.current("canary") or "none",
            "promoted": promoted,
            "reason": reason,
            "candidate": evaluation["candidate"] or "none",
            "canary_review": review["review"]["detail"] if review["review"] else "none",
            "weights": _weights_table({"production": current.weights}),
            **_registry_tables(registry),
        },
        data_version=dg.DataVersion(current.version),
    )
