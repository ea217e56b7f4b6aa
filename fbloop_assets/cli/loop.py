"""The loop's commands: run, suggest, evaluate, export."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from fbloop_assets.cli.common import emit as _emit
from fbloop_assets.cli.common import iso_date as _iso_date
from fbloop_assets.cli.common import positive as _positive
from fbloop_assets.cli.common import progress as _progress
from fbloop_assets.lib.common.lake import resolve_data_dir


def _render_day(summary: dict[str, Any]) -> str:
    q = summary["quarantined"]
    f = summary["feedback"]
    reasons = ", ".join(f"{k} {v}" for k, v in q.items() if k != "total") or "none"
    read = sum(summary["rows_read"].values())
    return "\n".join(
        [
            f"{summary['date']}: read {read:,} rows "
            + "("
            + ", ".join(f"{k} {v:,}" for k, v in summary["rows_read"].items())
            + ")",
            f"  quarantined {q.get('total', 0):,}: {reasons}",
            f"  normalized {f['normalized']:,} feedback rows;"
            f" excluded for missing consent {f['excluded_no_consent']:,};"
            f" incomplete (attribution window open) {f['incomplete']:,}",
            "  checks: " + (", ".join(f"{k} {v}" for k, v in summary["checks"].items()) or "none"),
            *(f"  blocked, production unchanged: {b}" for b in summary.get("blocked", [])),
            *_render_loop(summary.get("loop", {})),
        ]
    )


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _render_loop(loop: dict[str, Any]) -> list[str]:
    """The dataset, candidate and production lines of a day's summary (`LoopOutcome.as_dict`)."""
    dataset = loop.get("dataset")
    lines = [
        f"  dataset {dataset['version']}: {dataset['records']:,} records ({dataset['labeled']:,} labeled)"
        if dataset
        else "  dataset: none (no serving day with closed attribution windows yet)"
    ]
    if candidate := loop.get("candidate"):
        arms = loop.get("evaluation", {})
        cand, prod = arms.get("candidate", {}), arms.get("production", {})
        lines.append(
            f"  candidate {candidate}: NDCG@5 {_number(cand.get('ndcg_at_5'))}"
            f" (production {_number(prod.get('ndcg_at_5'))}), SNIPS conversion yield"
            f" {_number(cand.get('snips_conversion_yield'), 4)}"
            f" (production {_number(prod.get('snips_conversion_yield'), 4)})"
        )
    if decision := loop.get("production"):
        after = decision["after"]
        others = [f"{a} {after[a]}" for a in ("staging", "canary") if after.get(a)]
        moved = "promoted" if decision["promoted"] else "not promoted"
        lines.append(
            f"  production {after['production']}"
            + (f" ({', '.join(others)})" if others else "")
            + f": {moved}: {decision['reason'] or 'no reason recorded'}"
        )
    else:
        lines.append("  production unchanged: production_weights did not run")
    if review := loop.get("canary_review"):
        lines.append(f"  canary: {review['reason']}")
    return lines


def preflight() -> None:
    """Refuse a broken configuration or key before a run starts, not in the middle of it."""
    from fbloop_assets.lib.common.config import load_config
    from fbloop_assets.lib.common.privacy import load_key

    load_config()
    load_key(resolve_data_dir())


def cmd_run(args: argparse.Namespace) -> None:
    from fbloop_assets.daily_run import ensure_dagster_home, run_day

    preflight()
    home = ensure_dagster_home()
    _progress(f"materializing the daily loop for {args.date} (instance {home})")
    started = time.perf_counter()
    summary = run_day(args.date).as_dict()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _progress(f"done in {summary['seconds']} s")
    _emit(summary, args.json, _render_day)


def _render_slate(payload: dict[str, Any]) -> str:
    lines = [
        f"campaign {payload['campaign_id']}: {len(payload['slate'])} creator(s),"
        f" weights {payload['weights_version']}, request {payload['request_id']}",
        f"{'rank':>4}  {'creator':<12} {'score':>8} {'propensity':>11}",
    ]
    lines += [
        f"{r['rank']:>4}  {r['creator_id']:<12} {r['score']:>8.3f} {r['propensity']:>11.4f}"
        for r in payload["slate"]
    ]
    lines.append("logged to the slate log (fbloop's database)")
    return "\n".join(lines)


def cmd_suggest(args: argparse.Namespace) -> None:
    import numpy as np

    from fbloop_assets.lib.common.config import load_config
    from fbloop_assets.lib.common.lake import Lake
    from fbloop_assets.lib.common.store import current_actor, open_data_store
    from fbloop_assets.lib.serving.live import LiveServing

    config = load_config()
    lake = Lake(resolve_data_dir())
    # the same path as `POST /api/v1/suggestions`: routed, scored, committed to the slate log
    serving = LiveServing(lake, open_data_store(lake.root), config.canary.share, config.serving.temperature)
    slate = serving.suggest(
        args.campaign, args.k, None, f"cli:{current_actor()}", np.random.default_rng(args.seed)
    )
    payload = slate.as_dict() | {"scored_against": serving.context().sources, "logged_to": "slate_log"}
    _emit(payload, args.json, _render_slate)


def _load_weights(reference: str) -> tuple[str, dict[str, float]]:
    """A registry version id, or a JSON file holding ``{feature: weight}`` (or ``{"weights": {...}}``)."""
    from pathlib import Path

    from fbloop_assets.lib.common.lake import Lake
    from fbloop_assets.lib.scoring.features import weight_vector
    from fbloop_assets.lib.weights.registry import Registry

    path = Path(reference)
    if path.suffix == ".json" or path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read weights file {path}: {exc}") from None
        weights = raw.get("weights", raw) if isinstance(raw, dict) else None
        if not isinstance(weights, dict):
            raise ValueError(f"weights file {path} must hold a JSON object of feature weights")
        weight_vector(weights)  # refuses a file that lacks a feature
        return str(path), {k: float(v) for k, v in weights.items()}
    version = Registry.of(Lake(resolve_data_dir())).load(reference)
    return version.version, version.weights


def _render_evaluation(payload: dict[str, Any]) -> str:
    from fbloop_assets.lib.weights.evaluation import METRIC_NAMES

    names = list(payload["results"])
    width = max(len(n) for n in names) + 2
    lines = [
        f"offline evaluation on recommendations served {payload['from']} to {payload['to']}"
        f" ({payload['records']:,} records, {payload['labeled_records']:,} labeled)",
        f"{'metric':<30}" + "".join(f"{n:>{max(width, 14)}}" for n in names),
    ]
    for metric in (*METRIC_NAMES, "ope_records", "queries"):
        cells = []
        for n in names:
            value = payload["results"][n].get(metric)
            cells.append(
                "–" if value is None else f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
            )
        lines.append(f"{metric:<30}" + "".join(f"{c:>{max(width, 14)}}" for c in cells))
    if payload["feedback_days_missing"]:
        lines.append(
            "feedback not yet materialized (outcomes may be missing): "
            + ", ".join(payload["feedback_days_missing"])
        )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from datetime import timedelta

    import polars as pl

    from fbloop_assets.lib.common.config import load_config
    from fbloop_assets.lib.common.lake import Lake, days_between
    from fbloop_assets.lib.dataset.build import build_examples, closing_days, serving_pools
    from fbloop_assets.lib.weights.evaluation import evaluate
    from fbloop_assets.lib.weights.off_policy import LoggingPolicy
    from fbloop_assets.lib.weights.registry import Registry

    if args.to < args.from_:
        raise ValueError(f"--to {args.to} is before --from {args.from_}")
    config = load_config()
    lake = Lake(resolve_data_dir())
    label, weights = _load_weights(args.weights)
    days = days_between(args.from_, args.to)
    feedback_days = days_between(args.from_, args.to + timedelta(days=closing_days(config)))
    recs = [p for d in days if (p := lake.table_path("raw_recommendations", d)).exists()]
    feedback = [p for d in feedback_days if (p := lake.table_path("normalized_feedback", d)).exists()]
    if not recs or not feedback:
        raise FileNotFoundError(f"no recommendations or feedback materialized for {args.from_} to {args.to}")
    _progress(f"building examples from {len(recs)} serving day(s) and {len(feedback)} feedback day(s)")
    pools = serving_pools(lake, days)
    examples = build_examples(
        pl.scan_parquet(recs),
        pl.scan_parquet(feedback),
        pools,
        days,
        0.0,
        lake.scan_tables("label_retractions", feedback_days),  # undone labels count nowhere
        lake.scan_tables("held_back_feedback", feedback_days),  # nor do rows a guard held back
    )
    registry = Registry.of(lake)
    production = registry.production()
    logged = LoggingPolicy.of(
        registry, examples["weights_version"].to_list(), config.ingestion.propensity_kind
    )
    results = {label: evaluate(weights, examples, pools, config, logged)}
    if production.version != label:
        results[f"production {production.version}"] = evaluate(
            production.weights, examples, pools, config, logged
        )
    payload = {
        "from": args.from_.isoformat(),
        "to": args.to.isoformat(),
        # outcomes of these days may still be missing: their feedback is not materialized
        "feedback_days_missing": [
            d.isoformat() for d in feedback_days if not lake.table_path("normalized_feedback", d).exists()
        ],
        "records": examples.height,
        "labeled_records": int((examples["n_labels"] > 0).sum()),
        "results": results,
    }
    _emit(payload, args.json, _render_evaluation)


def _render_export(stats: dict[str, Any]) -> str:
    keys = ("total", "exported", "deduplicated", "withheld", "anonymized", "skipped", "errors", "seconds")
    return "\n".join([f"exported to {stats['file']}", *(f"  {k:<13}{stats[k]:>12,}" for k in keys)])


def cmd_export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from fbloop_assets.lib.common.config import load_config
    from fbloop_assets.lib.common.lake import Lake
    from fbloop_assets.lib.common.store import current_actor, open_data_store
    from fbloop_assets.lib.dataset.export_audit import ExportRequest, checked_export
    from fbloop_assets.lib.serving.suggest import now_utc

    config = load_config()
    lake = Lake(resolve_data_dir())
    now = now_utc()
    end_day = args.end_date or now.date()
    out_dir = Path(args.out) if args.out else lake.root / "exports"
    _progress(f"exporting {args.days_back} day(s) of feedback up to {end_day}")
    request = ExportRequest(end_day, args.days_back, args.min_feedback_fields, args.format, out_dir)
    done = checked_export(
        lake,
        request,
        mode=config.privacy.mode,
        group=config.export.group,
        engine=open_data_store(lake.root),
        actor=current_actor(),
        via="cli fbloop export",
        now=now,
    )
    if done.outcome.failed:
        raise ValueError(f"export refused and its file deleted: {done.outcome.detail}")
    _emit(
        done.stats.as_dict() | {"sha256": done.sha256, "export_record": done.record_id},
        args.json,
        _render_export,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the loop's commands to the `fbloop` parser."""
    run = sub.add_parser(
        "run", help="materialize the daily loop for one partition on the configured instance"
    )
    run.add_argument("--date", type=_iso_date, required=True, help="the UTC day to run, YYYY-MM-DD")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    suggest = sub.add_parser(
        "suggest", help="rank creators for a campaign with the weights in force, log the slate"
    )
    suggest.add_argument("--campaign", required=True, help="campaign id")
    suggest.add_argument("--k", type=_positive, default=10, help="creators in the slate (10)")
    suggest.add_argument("--seed", type=int, default=None, help="seed of the slate draw (random if unset)")
    suggest.add_argument("--json", action="store_true", help="print the slate as JSON")
    suggest.set_defaults(func=cmd_suggest)

    evaluate = sub.add_parser("evaluate", help="offline metrics of any weights on logged recommendations")
    evaluate.add_argument(
        "--weights", required=True, help="a weights version (w0, w-...) or a JSON file of feature weights"
    )
    evaluate.add_argument("--from", dest="from_", type=_iso_date, required=True, help="first serving day")
    evaluate.add_argument("--to", type=_iso_date, required=True, help="last serving day")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    export = sub.add_parser("export", help="anonymized, de-duplicated training pairs for ML engineers")
    export.add_argument("--days-back", type=_positive, default=7, help="days of feedback to export (7)")
    export.add_argument(
        "--min-feedback-fields",
        type=int,
        default=1,
        help="skip pairs with fewer of: impressions, engagements, clicks, conversions, label (1)",
    )
    export.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (csv)")
    export.add_argument("--out", default=None, help="output folder (<data>/exports)")
    export.add_argument(
        "--end-date", type=_iso_date, default=None, help="last feedback day to export (today, UTC)"
    )
    export.add_argument("--json", action="store_true", help="print the statistics as JSON")
    export.set_defaults(func=cmd_export)
