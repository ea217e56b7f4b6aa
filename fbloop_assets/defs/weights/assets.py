"""Re-weighting, offline evaluation and promotion: `candidate_weights` → `weights_evaluation` →
`production_weights`, with the checks that gate the promotion."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import md_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.dataset import load_dataset, serving_pools
from fbloop_assets.lib.evaluation import METRIC_NAMES, evaluate
from fbloop_assets.lib.features import FEATURES
from fbloop_assets.lib.lake import Lake, days_between, write_json
from fbloop_assets.lib.promotion import enough_records, no_regression
from fbloop_assets.lib.registry import (
    ALIASES,
    Evaluation,
    LaterDecision,
    Registry,
    WeightsVersion,
    now_iso,
)
from fbloop_assets.lib.rollout import DayOutcome, advance, slate_outcomes
from fbloop_assets.lib.training import candidate_weights as fit_candidate


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
)
def candidate_weights(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """New scorer weights fitted on this day's FeedbackDataset, a bounded step from production.

    A propensity-weighted logistic regression over labels, conversions, clicks and engagements
    (labels and conversions weigh most; see `training.*` in fbloop.toml) gives a direction; the
    candidate moves from the production weights in force at the start of the day towards it by at
    most `training.max_step` per weight. Stored as an immutable, content-addressed WeightsVersion
    (`w-…`) with its parent (production) and dataset version under `weights/versions/`.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    dataset = load_dataset(lake, _record(lake, "feedback_dataset", day)["version"])
    registry = Registry.of(lake)
    production = registry.production_before(day)
    fitted = fit_candidate(dataset.examples(), production.weights, config.training)
    if fitted is None:
        record = {"candidate": None, "parent": production.version, "dataset_version": dataset.version}
        record["reason"] = "no evidence to fit on (empty dataset)"
        write_json(record, lake.record_path("candidate_weights", day))
        context.log.warning(f"no candidate for {day}: {record['reason']}")
        return dg.MaterializeResult(
            metadata={"candidate": "none", "reason": record["reason"], "parent": production.version},
            data_version=dg.DataVersion(f"none-{dataset.version}"),
        )
    weights, fit = fitted
    version = registry.save(WeightsVersion.create(weights, production.version, dataset.version, fit))
    record = {"candidate": version.version, "parent": production.version, "dataset_version": dataset.version}
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
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"polars"},
    code_version="1",
    deps=[candidate_weights, "feedback_dataset"],
    check_specs=[
        dg.AssetCheckSpec(
            "enough_records",
            asset="weights_evaluation",
            description="The dataset and its held-out labeled records are large enough to judge a candidate.",
        ),
        dg.AssetCheckSpec(
            "no_regression",
            asset="weights_evaluation",
            description="The candidate is not worse than production on NDCG@5 or SNIPS conversions, "
            "beyond the configured tolerances.",
        ),
    ],
)
def weights_evaluation(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """Candidate versus production, offline, on the dataset's held-out requests.

    NDCG@5 and precision@5 on labeled recommendations; IPS and SNIPS estimates of conversions and
    engagements per slate from the logged propensities (importance weights capped at
    `evaluation.ips_clip`); exposure Gini and catalog coverage of the rankings; the records behind
    each figure. Its checks (`enough_records`, `no_regression`, thresholds under `promotion.*`)
    gate the candidate: a failed check keeps it out of staging (see `production_weights`).
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
    results = {"production": evaluate(production.weights, holdout, pools, config)}
    if candidate_record["candidate"]:
        candidate = registry.load(candidate_record["candidate"])
        results["candidate"] = evaluate(candidate.weights, holdout, pools, config)
    checks = [
        enough_records(examples.height, results["production"]["labeled_records"], config.promotion),
        no_regression(results.get("candidate", {}), results["production"], config.promotion),
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
        registry.record_evaluation(
            Evaluation(
                version=candidate_record["candidate"],
                day=day.isoformat(),
                at=now_iso(),
                production=production.version,
                dataset_version=dataset.version,
                metrics=results,
                checks=record["checks"],
                passed=all(c.passed for c in checks),
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
        check_results=[
            dg.AssetCheckResult(
                check_name=c.name,
                passed=c.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=c.detail,
                metadata={
                    "value": dg.MetadataValue.json(c.value),
                    "threshold": dg.MetadataValue.json(c.threshold),
                },
            )
            for c in checks
        ],
    )


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
        return slate_outcomes(pl.scan_parquet(recs), pl.scan_parquet(feedback))

    return slates_for


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"python"},
    code_version="2",
    deps=[weights_evaluation, "raw_recommendations", "normalized_feedback"],
)
def production_weights(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The registry's aliases after this loop day: staging, canary and production.

    In order: a canary that has served `canary.days` days is compared with production on the
    live outcomes of each arm's own slates (clicks and conversions per slate, with a bootstrap
    interval) and becomes production, or is rolled back with the evidence; the day's candidate
    moves to `staging` when every blocking check of `weights_evaluation` passed; a staged version
    that never ran as canary starts serving `canary.share` of requests. Every move is recorded in
    the registry's append-only alias history (`fbloop weights history`); `fbloop suggest` serves
    with what the aliases say. The first production version is `w0`, the hand-set default.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config()
    evaluation = _record(lake, "weights_evaluation", day)
    registry = Registry.of(lake)
    before = {a: registry.in_force(a, day) for a in ALIASES}
    failed = [c["name"] for c in evaluation["checks"] if not c["passed"]]
    try:
        outcome = advance(registry, day, evaluation["candidate"], failed, _slates_reader(lake), config.canary)
    except LaterDecision as exc:  # a backfill of an earlier day must not undo later decisions
        outcome = DayOutcome(moves=[], review=None, notes=[f"not moved: {exc}"])
    current = registry.production()
    promoted = any(m.alias == "production" for m in outcome.moves)
    reasons = [f"{m.alias} → {m.to_version or 'none'}: {m.reason}" for m in outcome.moves]
    reason = "; ".join(reasons + outcome.notes) or "no alias moved"
    record = {
        "production": current.version,
        "before": before,
        "after": {a: registry.current(a) for a in ALIASES},
        "candidate": evaluation["candidate"],
        "promoted": promoted,
        "reason": reason,
        "failed_checks": failed,
        "moves": [m.as_dict() for m in outcome.moves],
        "canary_review": outcome.review.as_dict() if outcome.review else None,
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
            "canary_review": outcome.review.detail if outcome.review else "none",
            "weights": _weights_table({"production": current.weights}),
            **_registry_tables(registry),
        },
        data_version=dg.DataVersion(current.version),
    )
