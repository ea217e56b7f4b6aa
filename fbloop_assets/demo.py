"""The closed loop on the embedded default (`fbloop demo`): serve, let the world respond, learn.

Each simulated day: the day's creator and campaign snapshots land and are ingested; the day's
suggestion requests are served by `lib.suggest` with the production weights in force (the same
code as `fbloop suggest`) and logged into the serving log; the simulated world responds with
outcomes and labels, delivered as they arrive; then the daily loop runs for the day, with the
guards on or off. On chosen days the world stages attacks (`lib.simulate.attacks`). The report
per day says which weights served, whether the production pointer moved and why (or which guard
blocked the day), the offline metrics, the exposure Gini and catalog coverage of what production
served, the attacks of the day, and (simulation only) the true NDCG@5 of production against the
hidden relevance.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from fbloop_assets.daily_run import DaySummary, ingest_reference, run_day
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import DATABASE_URL_ENV, EMBEDDED_STORE, dispose_all
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.serving.suggest import Arms, log_served, serve_arms
from fbloop_assets.lib.weights.decisions import Decisions
from fbloop_assets.lib.weights.handoffs import CandidateRecord, EvaluationRecord
from fbloop_assets.lib.weights.metrics import coverage, gini
from fbloop_assets.lib.weights.registry import Registry, WeightsVersion
from fbloop_assets.simulate import SimParams, Simulation
from fbloop_assets.simulate.attacks import attack_schedule, attacks_on, days_by_attack
from fbloop_assets.simulate.run import write_manifest
from fbloop_assets.simulate.truth import ceiling, true_ndcg

# What a demo writes under the data directory; `--fresh` removes exactly these.
DEMO_FOLDERS = (
    "landing",
    "rejects",
    "warehouse",
    "datasets",
    "weights",
    "exports",
    "simulation",
    "data_docs",
)
SERVING_LOG_NAME = "suggest-demo"


class StateExists(RuntimeError):
    pass


def clear_state(data_dir: Path) -> None:
    """Remove an earlier demo's files and its embedded store (never a store given by URL)."""
    if os.environ.get(DATABASE_URL_ENV):
        raise StateExists(f"--fresh clears only the embedded store; unset {DATABASE_URL_ENV} to use it")
    dispose_all()
    for name in DEMO_FOLDERS:
        shutil.rmtree(data_dir / name, ignore_errors=True)
    for path in data_dir.glob(f"{EMBEDDED_STORE}*"):  # the database and its WAL files
        path.unlink()


def _performance(lake: Lake, day: date) -> pl.DataFrame | None:
    found = lake.latest_partition("creator_performance", day)
    return pl.read_parquet(lake.table_path("creator_performance", found)) if found else None


def served_exposure(served: pl.DataFrame, catalog: pl.Series) -> dict[str, float]:
    """Exposure Gini and catalog coverage of ``served`` rows over ``catalog`` (zeros of the unshown count)."""
    shown = served.filter(pl.col("creator_id").is_in(catalog.implode()))["creator_id"]
    counts = shown.value_counts(name="n")
    exposures = catalog.unique().to_frame("creator_id").join(counts, on="creator_id", how="left")["n"]
    return {
        "exposure_gini": gini(exposures.fill_null(0).to_numpy()),
        "catalog_coverage": coverage(shown.to_list(), catalog.n_unique()),
    }


def _day_report(
    lake: Lake,
    registry: Registry,
    sim: Simulation,
    day: date,
    summary: DaySummary,
    served_by: dict[str, str],
    served: pl.DataFrame,
    attacks: tuple[str, ...] | list[str],
    changes: int,
    recommendations_served: int,
) -> dict[str, Any]:
    """The demo's report of one day: what served, what the loop decided, and the hidden truth.

    Read from the stages' typed records (the day's decision, candidate, dataset, evaluation), not
    from metadata strings; a record is missing when a guard stopped the day before its stage.
    """
    production = registry.production()
    decisions = Decisions(registry.engine)
    decision = decisions.get(day, "production_weights") or decisions.get(day, "canary_review")
    fitted = CandidateRecord.read_if_present(lake, day)
    candidate = fitted.candidate if fitted else None
    dataset = DatasetRecord.read_if_present(lake, day)
    manifest = json.loads((lake.root / dataset.manifest).read_text()) if dataset else {}
    evaluation = EvaluationRecord.read_if_present(lake, day)
    metrics = evaluation.metrics if evaluation else {}

    def metric(arm: str, name: str) -> float | None:
        return metrics.get(arm, {}).get(name)

    performance = _performance(lake, day)
    catalog = pl.read_parquet(lake.table_path("creators", day), columns=["creator_id"])["creator_id"]
    review = decision.review if decision else None
    return {
        "day": day.isoformat(),
        "served_by": served_by,
        "attacks": list(attacks),
        "blocked": summary.blocked,
        "production_before": served_by["production"],
        "production": production.version,
        "production_changed": production.version != served_by["production"],
        "production_changes": changes,
        "promoted": bool(decision and decision.promoted),
        "decision": decision.outcome if decision else None,
        "reason": decision.reason if decision and decision.stage == "production_weights" else None,
        "candidate": (candidate or "none") if fitted else None,
        "staging": (decision.after["staging"] or "none") if decision else None,
        "canary": (decision.after["canary"] or "none") if decision else None,
        "canary_review": review["detail"] if review else "none",
        "dataset_version": dataset.version if dataset else None,
        "dataset_records": manifest.get("record_count"),
        "dataset_labeled": manifest.get("labeled_count"),
        "ndcg_at_5": metric("candidate", "ndcg_at_5"),
        "production_ndcg_at_5": metric("production", "ndcg_at_5"),
        "snips_conversions_per_slate": metric("candidate", "snips_conversions_per_slate"),
        "production_snips_conversions_per_slate": metric("production", "snips_conversions_per_slate"),
        "snips_conversion_yield": metric("candidate", "snips_conversion_yield"),
        "production_snips_conversion_yield": metric("production", "snips_conversion_yield"),
        "true_ndcg_at_5": true_ndcg(sim.world, production.weights, performance, day),
        # what the day's fit would serve: attacks show here before any canary stops them
        "candidate_true_ndcg_at_5": (
            true_ndcg(sim.world, registry.load(candidate).weights, performance, day)
            if candidate and candidate != "none"
            else None
        ),
        **served_exposure(served, catalog),
        "recommendations_served": recommendations_served,
        "run_id": summary.run_id,
    }


def run_demo(
    data_dir: Path,
    config: FbloopConfig,
    *,
    days: int,
    seed: int,
    start: date,
    signals_per_day: int,
    instance: dg.DagsterInstance,
    progress: Callable[[str], None],
    guards: bool | None = None,
    attacks: tuple[str, ...] = (),
    attack_days: Mapping[str, tuple[int, ...]] | None = None,
    click_only: bool = False,
) -> dict[str, Any]:
    """Run the closed loop for ``days`` days; the per-day reports, the start and the end.

    ``guards`` overrides ``guards.enabled`` of ``config`` for every day's run; ``attacks`` are
    staged on their standard days of a run of ``days`` days (`attacks.attack_schedule`), and
    ``attack_days`` (attack -> 0-based days) stages attacks on exactly the days given;
    ``click_only``: a world that reports impressions and clicks only.
    """
    lake = Lake(data_dir)
    registry = Registry.of(lake)
    if registry.history() or lake.landing_dir("recommendations", start).exists():
        raise StateExists(f"{data_dir} already holds a loop's state; pass --fresh to start over")
    schedule = attack_schedule(attacks, days) | dict(attack_days or {})
    params = replace(SimParams(), signals_per_day=signals_per_day, attack_days=schedule)
    params = replace(params, click_only=click_only)
    sim = Simulation(data_dir, seed, start, params)
    guarded = config.guards.enabled if guards is None else guards
    initial = registry.production()
    initial_truth = true_ndcg(sim.world, initial.weights, None, start)
    served_on: dict[date, pl.DataFrame] = {}

    def server(day: date, requests: pl.DataFrame) -> tuple[pl.DataFrame, list[Path]]:
        ingest_reference(day, instance)
        arms = Arms.current(registry, config.canary.share)
        context = ScoringContext.from_lake(lake, day)
        rng = np.random.default_rng([seed, 4, day.toordinal()])
        served = serve_arms(
            context, arms, requests, config.serving.slate_size, config.serving.temperature, rng
        )
        served_on[day] = served.filter(pl.col("weights_version") == arms.production.version)
        return served, log_served(lake, served, SERVING_LOG_NAME)

    reports: list[dict[str, Any]] = []
    per_day: dict[str, Any] = {}
    changes = 0
    for i in range(days):
        day = start + timedelta(days=i)
        served_by = Arms.current(registry, config.canary.share).versions()
        serving = " and canary ".join(served_by.values())
        progress(f"day {i + 1}/{days} ({day}): serving with {serving}, simulating, running the loop")
        per_day[day.isoformat()] = sim.step(day, server)
        summary = run_day(day, instance, guards=guards)
        changes += registry.production().version != served_by["production"]
        reports.append(
            _day_report(
                lake,
                registry,
                sim,
                day,
                summary,
                served_by,
                served_on.pop(day),
                attacks_on(params, i),
                changes,
                per_day[day.isoformat()]["recommendations"]["rows"],
            )
        )
        progress(render_day(reports[-1]))
    write_manifest(sim, per_day, signals_per_day)
    return _summary(lake, registry, sim, reports, initial, initial_truth, start, days) | {
        "seed": seed,
        "signals_per_day": signals_per_day,
        "guards": guarded,
        "attacks": days_by_attack(params, start),
        "data_dir": str(data_dir),
    }


def _summary(
    lake: Lake,
    registry: Registry,
    sim: Simulation,
    reports: list[dict[str, Any]],
    initial: WeightsVersion,
    initial_truth: float,
    start: date,
    days: int,
) -> dict[str, Any]:
    """Production's way over the run: true NDCG@5 at the start and the end, and what changed."""
    last = start + timedelta(days=days - 1)
    final = registry.production()
    final_truth = true_ndcg(sim.world, final.weights, _performance(lake, last), last)
    # The hand-set weights also gain from the learned feature (past conversion rate); scored with
    # the same final features, they separate what re-weighting added from what the feature added.
    initial_now = true_ndcg(sim.world, initial.weights, _performance(lake, last), last)
    # The ceiling: the best linear weights on φ, fitted to the hidden truth (simulation only).
    ceiling_weights, ceiling_truth = ceiling(sim.world, _performance(lake, last), last)
    ends = ("true_ndcg_at_5", "exposure_gini", "catalog_coverage")
    return {
        "days": reports,
        "initial": {"version": initial.version, "weights": initial.weights, "true_ndcg_at_5": initial_truth},
        "final": {"version": final.version, "weights": final.weights, "true_ndcg_at_5": final_truth},
        "initial_weights_with_final_features": {"true_ndcg_at_5": initial_now},
        "true_ndcg_lift": final_truth / initial_truth - 1.0,
        "true_ndcg_lift_from_reweighting": final_truth / initial_now - 1.0,
        "ceiling": {"weights": ceiling_weights, "true_ndcg_at_5": ceiling_truth},
        "share_of_ceiling": final_truth / ceiling_truth,
        "first_day": {k: reports[0][k] for k in ("day", *ends)},
        "last_day": {k: reports[-1][k] for k in ("day", *ends)},
        "production_changes": reports[-1]["production_changes"],
        "blocked_days": sum(bool(r["blocked"]) for r in reports),
    }


# A day's line is wrapped at spaces to this width (a terminal would cut words), continuation
# lines indented under the day; reasons are whole.
LINE_WIDTH = 100
INDENT = " " * 12


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_day(r: dict[str, Any]) -> str:
    """One line: the day, its attacks, production and why, offline metrics, true NDCG@5, exposure."""
    if r["blocked"]:
        decision = "blocked: " + "; ".join(r["blocked"])
    elif r["promoted"]:
        decision = f"promoted {r['production']}"
    elif r["production_changed"]:
        decision = f"production {r['production_before']} -> {r['production']}: {r['reason'] or 'no reason'}"
    else:
        decision = f"kept {r['production']}: {r['reason'] or 'no decision'}"
    served_by = " + canary ".join(r["served_by"].values())
    attacked = f" | attack: {', '.join(r['attacks'])}" if r["attacks"] else ""
    line = (
        f"{r['day']}{attacked}  served by {served_by} | dataset {r['dataset_records'] or 0:,} records"
        f" ({r['dataset_labeled'] or 0:,} labeled) | NDCG@5 cand {_num(r['ndcg_at_5'])} / prod"
        f" {_num(r['production_ndcg_at_5'])} | SNIPS conversions/1k impressions cand"
        f" {_num(r['snips_conversion_yield'])} / prod {_num(r['production_snips_conversion_yield'])}"
        f" | true NDCG@5 {_num(r['true_ndcg_at_5'])} (candidate {_num(r['candidate_true_ndcg_at_5'])})"
        f" | exposure Gini {_num(r['exposure_gini'])}"
        f" coverage {_num(r['catalog_coverage'])} | {decision}"
    )
    return textwrap.fill(
        line, LINE_WIDTH, subsequent_indent=INDENT, break_long_words=False, break_on_hyphens=False
    )


def render(report: dict[str, Any], with_days: bool = True) -> str:
    """The demo's text report: a line per day, then production's way and the first and last day.

    ``with_days=False`` leaves the day lines out, for a terminal that showed them as they ran.
    """
    lines = [render_day(r) for r in report["days"]] if with_days else []
    i, f = report["initial"], report["final"]
    lines.append(
        f"production changed {report['production_changes']} time(s): {i['version']} -> {f['version']}; "
        f"true NDCG@5 {i['true_ndcg_at_5']:.4f} -> {f['true_ndcg_at_5']:.4f} "
        f"({report['true_ndcg_lift']:+.1%} against the hand-set default on day 1)"
    )
    now = report["initial_weights_with_final_features"]["true_ndcg_at_5"]
    lines.append(
        f"the hand-set weights with the same learned features: true NDCG@5 {now:.4f}; "
        f"re-weighting added {report['true_ndcg_lift_from_reweighting']:+.1%}"
    )
    lines.append(
        f"ceiling (best linear weights on φ fitted to the hidden truth): true NDCG@5"
        f" {report['ceiling']['true_ndcg_at_5']:.4f}; production reaches"
        f" {report['share_of_ceiling']:.1%} of it"
    )
    a, b = report["first_day"], report["last_day"]
    attacks = "; ".join(f"{n} on {len(d)} day(s)" for n, d in report["attacks"].items()) or "none"
    lines.append(
        f"guards {'on' if report['guards'] else 'off'}, attacks: {attacks}; blocked on"
        f" {report['blocked_days']} day(s); {a['day']} -> {b['day']}: true NDCG@5"
        f" {a['true_ndcg_at_5']:.4f} -> {b['true_ndcg_at_5']:.4f}, exposure Gini"
        f" {a['exposure_gini']:.4f} -> {b['exposure_gini']:.4f}, catalog coverage"
        f" {a['catalog_coverage']:.4f} -> {b['catalog_coverage']:.4f}"
    )
    return "\n".join(lines)
