"""Re-weighting, offline evaluation and promotion: `candidate_weights` → `weights_evaluation` →
`production_weights`, with the guards that gate the promotion (step size, no regression, exposure)."""

from datetime import timedelta
from typing import Any

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import check_result, md_table, partition_day
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.outcome import GuardOutcome, enforce
from fbloop_assets.lib.dataset.build import load_dataset, serving_pools
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.scoring.features import FEATURES
from fbloop_assets.lib.weights.evaluation import METRIC_NAMES, evaluate, paired_yields
from fbloop_assets.lib.weights.guards import exposure, no_regression, step_size
from fbloop_assets.lib.weights.handoffs import CandidateRecord, EvaluationRecord, day_checks
from fbloop_assets.lib.weights.off_policy import LoggingPolicy
from fbloop_assets.lib.weights.registry import (
    Evaluation,
    Registry,
    WeightsVersion,
    now_iso,
)
from fbloop_assets.lib.weights.training import candidate_weights as fit_candidate


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
            description="No weight moves further from production than training.max_step allows "
            "(a fail keeps the candidate out of staging; the run goes on).",
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

    Its check `step_size` verifies the bound on what was stored (warn from
    `guards.step.warn_share` of the bound); a fail keeps the candidate out of staging, recorded
    by `production_weights`, and is no failed run.
    """
    day = partition_day(context)
    # the production in force today is what the previous day decided
    wait_for_earlier_days(context, {"production_weights": [day - timedelta(days=1)]})
    lake = fbloop.lake()
    config = fbloop.config()
    dataset_record = DatasetRecord.read(lake, day)
    dataset = load_dataset(lake, dataset_record.version)
    registry = Registry(fbloop.store())
    production = registry.production_before(day)
    # a dataset that failed a check (too little evidence) is not fitted on: production stays
    unfit = [f"{c['name']}: {c['detail']}" for c in dataset_record.checks if c["verdict"] == "fail"]
    fitted = None if unfit else fit_candidate(dataset.examples(), production.weights, config.training)
    enabled = config.guards.enabled
    if fitted is None:
        reason = (
            f"not fitted, the dataset failed {'; '.join(unfit)}"
            if unfit
            else "no evidence to fit on (empty dataset)"
        )
        step = GuardOutcome("step_size", "pass", None, config.training.max_step, f"no candidate: {reason}")
        CandidateRecord(None, production.version, dataset.version, reason, [step.as_dict()]).write(lake, day)
        context.log.warning(f"no candidate for {day}: {reason}")
        return dg.MaterializeResult(
            metadata={"candidate": "none", "reason": reason, "parent": production.version},
            data_version=dg.DataVersion(f"none-{dataset.version}"),
            check_results=[check_result(step, enabled, context.partition_key, decides=True)],
        )
    weights, fit = fitted
    version = registry.save(WeightsVersion.create(weights, production.version, dataset.version, fit))
    step = enforce(
        step_size(version.weights, production.weights, config.training.max_step, config.guards.step), enabled
    )
    CandidateRecord(version.version, production.version, dataset.version, checks=[step.as_dict()]).write(
        lake, day
    )
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
        check_results=[check_result(step, enabled, context.partition_key, decides=True)],
    )


def _evaluate_arms(
    lake: Lake,
    registry: Registry,
    config: FbloopConfig,
    holdout: pl.DataFrame,
    production: dict[str, float],
    version: str | None,
) -> tuple[dict[str, dict[str, Any]], pl.DataFrame | None]:
    """Production's (and the candidate's) metrics on the held-out requests, and their paired yields."""
    pools = serving_pools(lake, sorted(set(holdout["serving_day"].to_list())))
    logged = LoggingPolicy.of(
        registry, holdout["weights_version"].to_list(), config.ingestion.propensity_kind
    )
    results = {"production": evaluate(production, holdout, pools, config, logged)}
    if not version:
        return results, None
    candidate = registry.load(version).weights
    results["candidate"] = evaluate(candidate, holdout, pools, config, logged)
    return results, paired_yields(candidate, production, holdout, pools, config, logged)


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
            description="The candidate is not worse than production on NDCG@5, nor on the lower bound of "
            "the bootstrap interval of its SNIPS conversion yield, beyond the tolerances.",
        ),
        dg.AssetCheckSpec(
            "exposure",
            asset="weights_evaluation",
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
    checks `no_regression` (NDCG@5 and the lower bound of a bootstrap interval over slates of
    the SNIPS conversion yield, `guards.regression.*`) and `exposure` (Gini, coverage, share of
    never-shown creators, `guards.exposure.*`) gate the candidate: a candidate that fails them
    is not staged, which `production_weights` records as the day's decision (a warning in the
    UI, not a failed run).
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    candidate_record = CandidateRecord.read(lake, day)
    dataset = load_dataset(lake, candidate_record.dataset_version)
    registry = Registry(fbloop.store())
    production = registry.production_before(day)
    examples = dataset.examples()
    holdout = examples.filter(pl.col("holdout"))
    version = candidate_record.candidate
    results, paired = _evaluate_arms(lake, registry, config, holdout, production.weights, version)
    guards = config.guards
    checks = [
        enforce(o, guards.enabled)
        for o in (
            no_regression(
                results.get("candidate"),
                results["production"],
                paired,
                guards.regression,
                0,
                config.objective,
            ),
            exposure(results.get("candidate"), results["production"], guards.exposure),
        )
    ]
    outcomes = [c.as_dict() for c in checks]
    EvaluationRecord(version, production.version, dataset.version, results, outcomes).write(lake, day)
    # a re-run of the day evaluates again but records nothing new: the registry keeps the first
    if version and not any(e.day == day.isoformat() for e in registry.evaluations(version)):
        checked = day_checks(lake, day)
        registry.record_evaluation(
            Evaluation(
                version=version,
                day=day.isoformat(),
                at=now_iso(),
                production=production.version,
                dataset_version=dataset.version,
                metrics=results,
                checks=checked,
                passed=not any(c["verdict"] == "fail" for c in checked),
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
            "candidate": version or "none",
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
        check_results=[check_result(c, guards.enabled, context.partition_key, decides=True) for c in checks],
    )
