"""Does a doubly robust estimate tighten the `no_regression` interval? SNIPS and DR side by side.

For every day of a finished loop (a data directory `fbloop demo` or the daily job left behind)
whose evaluation judged a candidate, it recomputes on that day's held-out requests, exactly as the
gate does (same weights, same logging policy, same bootstrap over slates, same seed and
confidence), the relative objective yield candidate / production - 1 two ways: SNIPS (what the
gate uses, `guards.relative_yield_interval`) and DR (`lib.weights.doubly_robust`, a ridge reward
model fitted on the dataset's training split). It prints, per day, both estimates, their
one-sided bounds and the interval widths, then the median width ratio DR / SNIPS.

    FBLOOP_CONFIG=... python benchmarks/dr_interval.py DATA_DIR [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config import load_config
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.dataset.build import load_dataset
from fbloop_assets.lib.dataset.examples import serving_pools
from fbloop_assets.lib.weights.doubly_robust import YieldModel, dr_relative_interval, dr_sums
from fbloop_assets.lib.weights.evaluation import paired_yields
from fbloop_assets.lib.weights.guards import relative_yield_interval
from fbloop_assets.lib.weights.handoffs import EvaluationRecord
from fbloop_assets.lib.weights.off_policy import LoggingPolicy
from fbloop_assets.lib.weights.registry import Registry


def _day(lake: Lake, registry: Registry, day: date, config: Any) -> dict[str, Any] | None:
    record = EvaluationRecord.read_if_present(lake, day)
    if record is None or not record.candidate:
        return None
    examples = load_dataset(lake, record.dataset_version).examples()
    holdout, train = examples.filter(pl.col("holdout")), examples.filter(~pl.col("holdout"))
    candidate = registry.load(record.candidate).weights
    production = registry.load(record.production).weights
    pools = serving_pools(lake, sorted(set(holdout["serving_day"].to_list())))
    policy = LoggingPolicy.of(
        registry, holdout["weights_version"].to_list(), config.ingestion.propensity_kind
    )
    regression = config.guards.regression
    paired = paired_yields(candidate, production, holdout, pools, config, policy)
    snips = relative_yield_interval(paired, regression.bootstrap_samples, regression.confidence, 0)
    model = YieldModel.fit(train, config, int(examples["rank"].to_numpy().max()))
    sums = dr_sums(candidate, production, holdout, pools, config, policy, model)
    dr = dr_relative_interval(sums, regression.bootstrap_samples, regression.confidence, 0)
    if snips is None or dr is None:
        return None
    return {
        "day": day.isoformat(),
        "slates": sums.height,
        "snips": dict(zip(("estimate", "lower", "upper"), snips, strict=True)),
        "dr": dict(zip(("estimate", "lower", "upper"), dr, strict=True)),
        "snips_width": snips[2] - snips[1],
        "dr_width": dr[2] - dr[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    args = parser.parse_args()
    config = load_config()
    lake = Lake(args.data_dir)
    registry = Registry(open_data_store(args.data_dir))
    days = sorted(
        date.fromisoformat(p.stem)
        for p in (args.data_dir / "warehouse" / "weights_evaluation").glob("*.json")
    )
    rows = []
    for day in days:
        print(f"dr interval: {day}", file=sys.stderr, flush=True)
        row = _day(lake, registry, day, config)
        if row is not None:
            rows.append(row)
    ratio = float(np.median([r["dr_width"] / r["snips_width"] for r in rows])) if rows else None
    if args.json:
        print(json.dumps({"days": rows, "median_width_ratio": ratio}, indent=2))
        return 0
    head = "estimate [lower, upper]"
    print(f"{'day':<11} {'slates':>6}  SNIPS {head:<24} {'width':>6}  DR {head:<27} {'width':>6}")
    for r in rows:
        s, d = r["snips"], r["dr"]
        snips = f"{s['estimate']:+.3f} [{s['lower']:+.3f}, {s['upper']:+.3f}]"
        dr = f"{d['estimate']:+.3f} [{d['lower']:+.3f}, {d['upper']:+.3f}]"
        print(
            f"{r['day']:<11} {r['slates']:>6}  {snips:<30} {r['snips_width']:>6.3f}"
            f"  {dr:<30} {r['dr_width']:>6.3f}"
        )
    print(f"median width DR / SNIPS: {ratio:.3f} over {len(rows)} day(s)" if rows else "no judged candidate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
