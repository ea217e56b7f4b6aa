"""Re-weighting, offline evaluation and promotion: `candidate_weights` → `weights_evaluation` →
`production_weights`, with the checks that gate the promotion."""

import json
from typing import Any

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import md_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.dataset import load_dataset, serving_pools
from fbloop_assets.lib.evaluation import METRIC_NAMES, evaluate
from fbloop_assets.lib.features import FEATURES
from fbloop_assets.lib.lake import Lake, write_json
from fbloop_assets.lib.promotion import CheckOutcome, decide, enough_records, no_regression
from fbloop_assets.lib.registry import LaterDecision, Registry, WeightsVersion
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
    gate `production_weights`: a failed check keeps production where it is.
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


@dg.asset(
    partitions_def=daily_partitions,
    group_name="weights",
    kinds={"python"},
    code_version="1",
    deps=[weights_evaluation],
)
def production_weights(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """The weights version `fbloop suggest` serves with: moved to the candidate only when its checks pass.

    Reads the day's `weights_evaluation` and its checks; when every check passed and the candidate
    differs from production, the production pointer moves (an append-only history in
    `weights/production_history.jsonl`). Otherwise production stays as it was, and the reason is
    here. The first production version is `w0`, the hand-set default documented in the README.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    evaluation = _record(lake, "weights_evaluation", day)
    registry = Registry.of(lake)
    before = registry.production_before(day)
    checks = evaluation["checks"]
    failed = [c for c in checks if not c["passed"]]
    promote, reason = decide([CheckOutcome(**c) for c in checks], evaluation["candidate"], before.version)
    if promote:
        try:
            registry.move_production(day, evaluation["candidate"], reason)
        except LaterDecision as exc:  # a backfill of an earlier day must not undo later decisions
            promote, reason = False, f"not moved: {exc}"
    current = registry.production()
    record = {
        "production": current.version,
        "before": before.version,
        "candidate": evaluation["candidate"],
        "promoted": promote,
        "reason": reason,
        "failed_checks": [c["name"] for c in failed],
    }
    write_json(record, lake.record_path("production_weights", day))
    history = registry.history()[-10:]
    return dg.MaterializeResult(
        metadata={
            "production": current.version,
            "promoted": promote,
            "reason": reason,
            "candidate": evaluation["candidate"] or "none",
            "weights": _weights_table({"production": current.weights}),
            "recent_moves": md_table(
                ["loop day", "from", "to", "reason"],
                [[m.day, m.from_version, m.to_version, m.reason] for m in reversed(history)],
            ),
        },
        data_version=dg.DataVersion(current.version),
    )
