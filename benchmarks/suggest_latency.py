"""How long one suggestion request takes in-process over a catalog of 50,000 creators.

Builds a simulated catalog of 50,000 creators and 40 campaigns, the scoring context once (as a
serving process does at start-up), then times single requests through `lib.suggest.serve`: the
campaign's eligibility filter and matches, ``w · φ`` for every eligible creator, and one
Plackett-Luce slate of 10 with its propensities. Also times `ScoringContext.rank` (deterministic
top 10). Prints the pool sizes and the latency distribution.

    python benchmarks/suggest_latency.py [--creators 50000] [--requests 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.serving.suggest import serve
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.world import _make_campaigns, _make_creators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    params = replace(SimParams(), n_creators=args.creators)
    rng = np.random.default_rng(11)
    creators, _ = _make_creators(params, rng)
    campaigns = _make_campaigns(params, rng, date(2026, 1, 1))
    started = time.perf_counter()
    context = ScoringContext.build(campaigns, creators, None)
    build_ms = (time.perf_counter() - started) * 1000
    print(f"scoring context for {creators.height:,} creators built in {build_ms:.1f} ms", file=sys.stderr)

    ids = campaigns["campaign_id"].to_list()
    pools = [context.pool(c)[0].size for c in ids]
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    serve_ms, rank_ms = [], []
    for i in range(args.requests):
        campaign = ids[i % len(ids)]
        request = pl.DataFrame({"request_id": [f"req-{i}"], "campaign_id": [campaign], "served_at": [now]})
        t0 = time.perf_counter()
        serve(context, INITIAL, request, 10, 0.4, rng)
        t1 = time.perf_counter()
        context.rank(campaign, INITIAL.weights, 10)
        t2 = time.perf_counter()
        serve_ms.append((t1 - t0) * 1000)
        rank_ms.append((t2 - t1) * 1000)
    median, largest = int(np.median(pools)), max(pools)
    print(f"catalog: {creators.height:,} creators; eligible per campaign: median {median:,}, max {largest:,}")
    for name, values in (
        ("serve (slate of 10 + propensities)", serve_ms),
        ("rank (deterministic top 10)", rank_ms),
    ):
        v = np.asarray(values)
        print(
            f"{name}: {len(v)} requests, median {np.median(v):.2f} ms, p95 {np.percentile(v, 95):.2f} ms,"
            f" max {v.max():.2f} ms"
        )


if __name__ == "__main__":
    main()
