"""A day's normalization in shards: its rows split by a hash of their recommendation id.

Recommendations, outcome signals and labels are all split by the same hash, so the join of a
signal or label to its recommendation never leaves a shard, and each shard is normalized on its
own (`normalize_plan` on the shard's rows). A signal id names one signal of one recommendation
(ingestion drops same-day duplicates), so de-duplication stays within a shard too, and the
shards' feedback, rejects and counts add up to the unsharded day's. A shard writes its feedback
and rejects under `staging/normalized_feedback/<day>/` with a summary; `combined_plan` reads them
back as one `NormalizationPlan`, which `feedback_and_quarantine` writes as the day's table.

The hash is polars' (seeded, fast, but not promised stable across polars versions), so each
shard's summary names the polars version that split it, and shards split by different versions
are refused: re-run every shard of the day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from fbloop_assets.lib.common.lake import Lake, write_json, write_parquet
from fbloop_assets.lib.feedback.normalize import NormalizationPlan

SEED = 20_260_101


class ShardMismatch(ValueError):
    """The day's shard files do not belong together (missing, another count, another split)."""


def in_shard(frame: pl.LazyFrame, index: int, count: int) -> pl.LazyFrame:
    """The rows of ``frame`` whose recommendation id falls in shard ``index`` of ``count``."""
    if count == 1:
        return frame
    return frame.filter(pl.col("recommendation_id").hash(seed=SEED) % count == index)


@dataclass(frozen=True)
class ShardFiles:
    """Where shard ``index`` of ``count`` of one day keeps its feedback, rejects and summary."""

    folder: Path
    index: int
    count: int

    @classmethod
    def of(cls, lake: Lake, day: date, index: int, count: int) -> ShardFiles:
        return cls(lake.root / "staging" / "normalized_feedback" / day.isoformat(), index, count)

    def _path(self, what: str, suffix: str) -> Path:
        return self.folder / f"{what}-{self.index + 1}-of-{self.count}.{suffix}"

    @property
    def feedback(self) -> Path:
        return self._path("feedback", "parquet")

    @property
    def rejects(self) -> Path:
        return self._path("rejects", "parquet")

    @property
    def summary(self) -> Path:
        return self._path("summary", "json")


def write_summary(files: ShardFiles, plan: NormalizationPlan) -> dict[str, Any]:
    """Record what the shard's plan knew (its counts), after its feedback and rejects are written."""
    write_parquet(plan.rejects, files.rejects)
    summary = {
        "shard": files.index + 1,
        "of": files.count,
        "polars": pl.__version__,
        "seed": SEED,
        "counts": plan.counts,
        "rows_before_dedup": plan.rows_before_dedup,
        "collapsed": plan.collapsed,
    }
    write_json(summary, files.summary)
    return summary


def combined_plan(lake: Lake, day: date, count: int) -> NormalizationPlan:
    """The ``count`` shards of ``day`` as one plan: feedback scanned in shard order, counts summed."""
    shards = [ShardFiles.of(lake, day, i, count) for i in range(count)]
    missing = [f.index + 1 for f in shards if not f.summary.exists()]
    if missing:
        raise ShardMismatch(f"shards {missing} of {count} of {day} are not written: materialize them first")
    summaries = [json.loads(f.summary.read_text(encoding="utf-8")) for f in shards]
    splits = {(s["polars"], s["seed"]) for s in summaries}
    if len(splits) > 1:
        raise ShardMismatch(
            f"the shards of {day} were split by different polars versions {sorted(splits)}: re-run them all"
        )
    counts: dict[str, int] = {}
    for summary in summaries:
        for name, value in summary["counts"].items():
            counts[name] = counts.get(name, 0) + value
    return NormalizationPlan(
        feedback=pl.scan_parquet([f.feedback for f in shards]),
        rejects=pl.concat([pl.read_parquet(f.rejects) for f in shards]),
        counts=counts,
        rows_before_dedup=sum(s["rows_before_dedup"] for s in summaries),
        collapsed=sum(s["collapsed"] for s in summaries),
    )
