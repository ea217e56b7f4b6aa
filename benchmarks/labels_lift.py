"""SC-FB-002: do reviewer labels improve the learned weights? A controlled comparison on the simulator.

One synthetic world (fixed seed), served with the hand-set weights ``w0`` every day, goes through
fbloop's real ingestion, normalization and creator-performance assets day by day. Then, on the
same FeedbackDataset (serving days 1-7, every outcome window closed), candidate weights are
trained twice with `lib.training.candidate_weights` (the daily loop's code, a bounded step from
``w0``): once as configured (labels carry ``training.label_weight``) and once with
``label_weight = 0`` (outcomes only). Both are evaluated on held-out days never used for
training (serving days 8-10): NDCG@5 on the reviewers' labels (`lib.evaluation.ranking_metrics`:
one query per campaign, gain = share of useful labels), and, because the simulator knows it, the
true NDCG@5 against the hidden relevance. The criterion: labels improve NDCG@5 by at least 5%.

    python benchmarks/labels_lift.py [--seed 7] [--signals-per-day 20000] [--seeds 7,11,23]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from fbloop_assets.defs.feedback.assets import feedback_and_quarantine
from fbloop_assets.defs.feedback.performance import creator_outcomes_daily, creator_performance
from fbloop_assets.defs.ingest.assets import ingestion_assets
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.dataset.build import build_dataset, closing_days
from fbloop_assets.lib.scoring.features import FEATURES, weight_vector
from fbloop_assets.lib.weights.evaluation import ranking_metrics
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.lib.weights.training import candidate_weights
from fbloop_assets.simulate import SimParams, Simulation
from fbloop_assets.simulate.truth import true_ndcg

START = date(2026, 1, 1)
TRAIN_DAYS = 7
EVAL_DAYS = 3
ASSETS = [*ingestion_assets, feedback_and_quarantine, creator_outcomes_daily, creator_performance]


def _ndcg(examples: pl.DataFrame, weights: dict[str, float]) -> dict[str, Any]:
    scored = examples.filter(pl.col(FEATURES[0]).is_not_null())
    scored = scored.with_columns(pl.Series("s", scored.select(FEATURES).to_numpy() @ weight_vector(weights)))
    return ranking_metrics(scored, 5)


def run(seed: int, signals_per_day: int, work: Path) -> dict[str, Any]:
    """Simulate, ingest, train with and without labels, evaluate on the held-out days."""
    config = FbloopConfig()
    closing = closing_days(config)
    last_day = START + timedelta(days=TRAIN_DAYS + EVAL_DAYS + closing - 1)
    lake = Lake(work / "data")
    os.environ["FBLOOP_DATA_DIR"] = str(lake.root)
    sim = Simulation(lake.root, seed, START, replace(SimParams(), signals_per_day=signals_per_day))
    resources = {"fbloop": FbloopResource(data_dir=str(lake.root))}
    with dg.instance_for_test() as instance:
        day = START
        while day <= last_day:
            sim.step(day)
            result = dg.materialize(
                ASSETS, partition_key=day.isoformat(), resources=resources, instance=instance
            )
            if not result.success:
                raise RuntimeError(f"ingestion failed for {day}")
            print(f"  seed {seed}: simulated and ingested {day}", file=sys.stderr, flush=True)
            day += timedelta(days=1)
    # loop day whose dataset covers serving days 1-7; and the loop day whose 3-day window is days 8-10
    train = build_dataset(lake, START + timedelta(days=TRAIN_DAYS - 1 + closing), config).examples()
    held_config = replace(config, dataset=replace(config.dataset, window_days=EVAL_DAYS))
    held_out = build_dataset(lake, last_day, held_config).examples()
    assert set(train["serving_day"].unique()).isdisjoint(held_out["serving_day"].unique())
    outcomes_only = replace(config.training, label_weight=0.0)
    arms = {
        "w0 (hand-set)": (INITIAL.weights, None),
        "without labels": candidate_weights(train, INITIAL.weights, outcomes_only),
        "with labels": candidate_weights(train, INITIAL.weights, config.training),
    }
    performance = pl.read_parquet(lake.table_path("creator_performance", last_day))
    report: dict[str, Any] = {
        "seed": seed,
        "train_records": train.height,
        "train_labeled": int((train["n_labels"] > 0).sum()),
        "held_out_records": held_out.height,
        "held_out_labeled": int((held_out["n_labels"] > 0).sum()),
        "held_out_days": sorted(d.isoformat() for d in held_out["serving_day"].unique()),
        "arms": {},
    }
    for name, fitted in arms.items():
        if fitted is None:
            raise RuntimeError(f"{name}: no evidence to fit on")
        weights = fitted[0]
        metrics = _ndcg(held_out, weights)
        report["arms"][name] = {
            "weights": {f: round(w, 3) for f, w in weights.items()},
            "ndcg_at_5": metrics["ndcg_at_5"],
            "queries": metrics["queries"],
            "true_ndcg_at_5": true_ndcg(sim.world, weights, performance, last_day),
        }
    arms_out = report["arms"]
    report["lift"] = arms_out["with labels"]["ndcg_at_5"] / arms_out["without labels"]["ndcg_at_5"] - 1.0
    report["true_lift"] = (
        arms_out["with labels"]["true_ndcg_at_5"] / arms_out["without labels"]["true_ndcg_at_5"] - 1.0
    )
    return report


def render(report: dict[str, Any]) -> str:
    lines = [
        f"seed {report['seed']}: trained on {report['train_records']:,} records ({report['train_labeled']:,} "
        f"labeled), serving days 1-{TRAIN_DAYS}; evaluated on {report['held_out_labeled']:,} labeled of "
        f"{report['held_out_records']:,} records, held-out serving days {', '.join(report['held_out_days'])}",
    ]
    for name, arm in report["arms"].items():
        lines.append(
            f"  {name:<15} NDCG@5 on held-out labels {arm['ndcg_at_5']:.4f} ({arm['queries']} campaigns) | "
            f"true NDCG@5 {arm['true_ndcg_at_5']:.4f}"
        )
    lines.append(
        f"  labels vs no labels: NDCG@5 {report['lift']:+.1%} (criterion: at least +5%); "
        f"true NDCG@5 {report['true_lift']:+.1%}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7", help="comma-separated seeds (7)")
    parser.add_argument("--signals-per-day", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.setdefault("FBLOOP_PSEUDONYM_KEY", "benchmark-key-" + "0" * 32)
    os.environ.pop("FBLOOP_DATABASE_URL", None)
    os.environ.pop("FBLOOP_CONFIG", None)
    started = time.perf_counter()
    lifts = []
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory(prefix="fbloop-labels-lift-") as work:
            report = run(seed, args.signals_per_day, Path(work))
        print(render(report), flush=True)
        lifts.append(report["lift"])
    if len(lifts) > 1:
        print(f"NDCG@5 lift over {len(lifts)} seeds: mean {np.mean(lifts):+.1%}, min {min(lifts):+.1%}")
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
