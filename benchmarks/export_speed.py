"""Benchmark: the vectorized training export against a straightforward row-by-row one.

Builds a synthetic `normalized_feedback` of N rows (default 1,000,000) over 7 days in a temporary
data directory: about 23 outcome rows per recommendation, labels for about a tenth of them,
subject keys and age buckets on part of the outcomes, 1 % of signals re-delivered the next day,
a few events after their attribution window and a few rows that cannot be exported. It then
times `export_training_pairs` and `export_row_by_row` (below: one Python dict per
recommendation, a set for de-duplication, `csv.writer` for the file), checks that both wrote the
same pairs (numbers within 1e-9) and the same counts, and prints both timings, rows per second
and the speed-up.

    python benchmarks/export_speed.py               # 1M rows, best of 3 runs each
    python benchmarks/export_speed.py --rows 200000 --repeat 1

Progress goes to stderr, the results to stdout.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.dataset.build import OUTCOME_COLUMNS, SERVED_COLUMNS
from fbloop_assets.lib.dataset.export import EXPORT_COLUMNS, EXPORT_SCHEMA, export_training_pairs
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA

END_DAY = date(2026, 1, 10)
DAYS_BACK = 7
MIN_FEEDBACK_FIELDS = 3  # skips thin pairs, so the skip path is exercised too
NOW = datetime(2026, 1, 11, 2, 0, tzinfo=UTC)
EVENT_TYPES = ("impression", "engagement", "click", "conversion")
EVENT_SHARES = (0.70, 0.20, 0.08, 0.02)
WINDOW_DAYS = (1.0, 3.0, 7.0, 7.0)
US_PER_DAY = 86_400_000_000


def _log(message: str) -> None:
    print(f"benchmark: {message}", file=sys.stderr, flush=True)


def _recommendations(rng: np.random.Generator, n_recs: int) -> pl.DataFrame:
    """``n_recs`` served recommendations spread over the days, slates of five."""
    start = datetime.combine(END_DAY - timedelta(days=DAYS_BACK - 1), datetime.min.time(), UTC)
    start_us = int(start.timestamp() * 1_000_000)
    served = start_us + rng.integers(0, DAYS_BACK * US_PER_DAY, n_recs)
    return pl.DataFrame(
        {
            "rec": np.arange(n_recs),
            "campaign": rng.integers(0, 60, n_recs),
            "creator": rng.integers(0, 3_000, n_recs),
            "rank": rng.integers(1, 6, n_recs),
            "score": rng.random(n_recs),
            "propensity": rng.uniform(0.05, 1.0, n_recs),
            "weights": rng.integers(1, 3, n_recs),
            "served_us": served,
        }
    ).select(
        pl.format("rec-{}", "rec").alias("recommendation_id"),
        pl.format("req-{}", pl.col("rec") // 5).alias("request_id"),
        pl.format("cmp-{}", "campaign").alias("campaign_id"),
        pl.format("cr-{}", "creator").alias("creator_id"),
        "rank",
        "score",
        "propensity",
        pl.format("w-{}", "weights").alias("weights_version"),
        pl.from_epoch("served_us", time_unit="us").dt.replace_time_zone("UTC").alias("served_at"),
    )


def _outcomes(rng: np.random.Generator, recs: pl.DataFrame) -> pl.DataFrame:
    """About 23 outcomes per recommendation; most inside their window, ~3 % after it."""
    n_recs = recs.height
    per_rec = rng.poisson(23, n_recs)
    n_out = int(per_rec.sum())
    owner = np.repeat(np.arange(n_recs), per_rec)
    kind = rng.choice(len(EVENT_TYPES), n_out, p=EVENT_SHARES)
    window_us = (np.array(WINDOW_DAYS)[kind] * US_PER_DAY).astype(np.int64)
    late = rng.random(n_out) < 0.03
    delay = np.where(
        late, window_us + rng.integers(1, US_PER_DAY, n_out), rng.random(n_out) * window_us * 0.9
    )
    value = np.where(kind == 0, rng.integers(1, 50, n_out), rng.integers(1, 4, n_out)).astype(np.float64)
    subject = rng.random(n_out)
    outcomes = pl.DataFrame(
        {
            "i": np.arange(n_out),
            "owner": owner,
            "event_type": np.array(EVENT_TYPES)[kind],
            "value": value,
            "delay": delay.astype(np.int64),
            "window": window_us,
            "subject": subject,
        }
    ).join(recs.with_row_index("owner").with_columns(pl.col("owner").cast(pl.Int64)), on="owner")
    return outcomes.select(
        pl.format("signal:{}", "i").alias("feedback_id"),
        pl.lit("outcome").alias("kind"),
        "event_type",
        "value",
        pl.lit(None, pl.Float64).alias("confidence"),
        pl.lit("bench").alias("source"),
        pl.lit(None, pl.String).alias("reviewer_id"),
        *SERVED_COLUMNS,
        (pl.col("served_at") + pl.duration(microseconds="delay")).alias("event_at"),
        pl.when(pl.col("subject") < 0.35).then(pl.format("sk-{}", pl.col("i") % 50_000)).alias("subject_key"),
        pl.when(pl.col("subject") < 0.40).then(pl.lit("25-34")).alias("age_bucket"),
        pl.when(pl.col("subject") < 0.35).then(pl.lit("DE")).alias("subject_country"),
        (pl.col("served_at") + pl.duration(microseconds="window")).alias("attribution_closes_at"),
    )


def _labels(rng: np.random.Generator, recs: pl.DataFrame) -> pl.DataFrame:
    """Labels for ~10 % of the recommendations, one or two each."""
    n_recs = recs.height
    labeled = np.flatnonzero(rng.random(n_recs) < 0.10)
    label_owner = np.concatenate([labeled, labeled[rng.random(labeled.size) < 0.3]])
    n_lab = label_owner.size
    labels = pl.DataFrame(
        {
            "i": np.arange(n_lab),
            "owner": label_owner,
            "value": (rng.random(n_lab) < 0.6).astype(np.float64),
            "confidence": rng.uniform(0.5, 1.0, n_lab),
            "delay": rng.integers(0, 2 * US_PER_DAY, n_lab),
        }
    ).join(recs.with_row_index("owner").with_columns(pl.col("owner").cast(pl.Int64)), on="owner")
    return labels.select(
        pl.format("label:{}", "i").alias("feedback_id"),
        pl.lit("label").alias("kind"),
        pl.lit("label").alias("event_type"),
        "value",
        "confidence",
        pl.lit("reviewer").alias("source"),
        pl.format("rv-{}", pl.col("i") % 40).alias("reviewer_id"),
        *SERVED_COLUMNS,
        (pl.col("served_at") + pl.duration(microseconds="delay")).alias("event_at"),
        *(pl.lit(None, pl.String).alias(c) for c in ("subject_key", "age_bucket", "subject_country")),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("attribution_closes_at"),
    )


def synthetic_feedback(rows: int, seed: int = 7) -> pl.DataFrame:
    """About ``rows`` normalized feedback rows (exactly ``rows`` after sampling) over 7 days."""
    rng = np.random.default_rng(seed)
    n_recs = int(rows / 22.5) + 1  # ~23 outcomes and ~0.13 labels each; sampled down to rows
    recs = _recommendations(rng, n_recs)
    outcomes = _outcomes(rng, recs)
    labels = _labels(rng, recs)
    feedback = pl.concat([outcomes, labels]).sample(n=rows, seed=seed, shuffle=True)
    last_day = pl.lit(END_DAY)
    feedback = feedback.with_columns(
        pl.min_horizontal(pl.col("event_at").dt.date(), last_day).alias("partition_date")
    )
    # 1 % of the signals are delivered again the next day (same feedback_id).
    again = feedback.filter(
        (pl.col("kind") == "outcome")
        & (pl.col("partition_date") < last_day)
        & (pl.col("feedback_id").hash(seed=1) % 100 == 0)
    ).with_columns(pl.col("partition_date") + pl.duration(days=1))
    feedback = pl.concat([feedback.head(rows - again.height), again])
    # A few rows that cannot be exported.
    bad = pl.int_range(pl.len()) % 20_000
    feedback = feedback.with_columns(
        pl.when(bad == 1).then(None).otherwise(pl.col("recommendation_id")).alias("recommendation_id"),
        pl.when((bad == 2) & (pl.col("kind") == "outcome"))
        .then(-1.0)
        .otherwise(pl.col("value"))
        .alias("value"),
    )
    day_end = pl.col("partition_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + pl.duration(
        days=1
    )
    feedback = feedback.with_columns(
        pl.when(pl.col("kind") == "label")
        .then(True)
        .otherwise(pl.col("attribution_closes_at") <= day_end)
        .alias("attribution_complete")
    )
    return feedback.cast(FEEDBACK_SCHEMA).select(list(FEEDBACK_SCHEMA))  # type: ignore[arg-type]


def write_days(lake: Lake, feedback: pl.DataFrame) -> None:
    for (day,), part in feedback.partition_by("partition_date", as_dict=True, maintain_order=False).items():
        path = lake.table_path("normalized_feedback", day)  # type: ignore[arg-type]
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path, compression="zstd")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _rfc3339(value)
    return str(value)


def _error_reason(row: dict[str, Any]) -> str | None:
    if row["feedback_id"] is None:
        return "missing feedback_id"
    if row["recommendation_id"] is None:
        return "missing recommendation_id"
    if row["value"] is None:
        return "missing value"
    if row["kind"] == "outcome" and row["value"] < 0:
        return "negative outcome value"
    return None


def export_row_by_row(
    lake: Lake, end_day: date, days_back: int, min_feedback_fields: int, target: Path
) -> dict[str, int]:
    """The reference: one row at a time, a set for de-duplication, a dict per recommendation."""
    end_of_day = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), UTC)
    seen: set[str] = set()
    pairs: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for offset in range(days_back - 1, -1, -1):
        path = lake.table_path("normalized_feedback", end_day - timedelta(days=offset))
        if not path.exists():
            continue
        for row in pl.read_parquet(path).iter_rows(named=True):
            counts["total"] += 1
            fid = row["feedback_id"]
            if fid is not None:
                if fid in seen:
                    counts["deduplicated"] += 1
                    continue
                seen.add(fid)
            if _error_reason(row) is not None:
                counts["errors"] += 1
                continue
            pair = pairs.get(row["recommendation_id"])
            if pair is None:
                pair = {c: row[c] for c in SERVED_COLUMNS}
                pair |= {c: 0.0 for c in OUTCOME_COLUMNS.values()}
                pair |= {"labels": [], "confidences": [], "complete": True, "subject_rows": 0}
                pairs[row["recommendation_id"]] = pair
            closes = row["attribution_closes_at"]
            in_window = row["event_at"] is not None and closes is not None and row["event_at"] <= closes
            if row["event_type"] in OUTCOME_COLUMNS and in_window:
                pair[OUTCOME_COLUMNS[row["event_type"]]] += row["value"]
            if row["kind"] == "label":
                pair["labels"].append(row["value"])
                if row["confidence"] is not None:
                    pair["confidences"].append(row["confidence"])
            if row["kind"] == "outcome" and not (
                row["attribution_complete"] or (closes is not None and closes <= end_of_day)
            ):
                pair["complete"] = False
            if row["subject_key"] is not None or row["age_bucket"] is not None:
                pair["subject_rows"] += 1
    rows = []
    for pair in pairs.values():
        labels, confidences = pair["labels"], pair["confidences"]
        fields = sum(pair[c] != 0 for c in OUTCOME_COLUMNS.values()) + (len(labels) > 0)
        if fields < min_feedback_fields:
            counts["skipped"] += 1
            continue
        counts["exported"] += 1
        counts["anonymized"] += pair["subject_rows"]
        out = {c: pair[c] for c in SERVED_COLUMNS} | {c: pair[c] for c in OUTCOME_COLUMNS.values()}
        out["n_labels"] = len(labels)
        out["label_useful"] = sum(labels) / len(labels) if labels else None
        out["label_confidence"] = sum(confidences) / len(confidences) if confidences else None
        out["outcomes_complete"] = pair["complete"]
        rows.append(out)
    rows.sort(key=lambda r: (r["served_at"], r["request_id"], r["rank"], r["recommendation_id"]))
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for r in rows:
            writer.writerow([_csv_cell(r[c]) for c in EXPORT_COLUMNS])
    return {k: counts[k] for k in ("total", "exported", "deduplicated", "anonymized", "skipped", "errors")}


def read_export_csv(path: Path) -> pl.DataFrame:
    schema = {c: (pl.String() if c == "served_at" else t) for c, t in EXPORT_SCHEMA.items()}
    return pl.read_csv(path, schema=schema)  # type: ignore[arg-type]


def assert_same_exports(vectorized: Path, reference: Path) -> None:
    """Same pairs in the same order; strings, ints and booleans equal, floats within 1e-9."""
    left, right = read_export_csv(vectorized), read_export_csv(reference)
    if left.height != right.height:
        raise AssertionError(f"{left.height} pairs vs {right.height} in the reference")
    for name, dtype in EXPORT_SCHEMA.items():
        a, b = left[name], right[name]
        if not a.is_null().equals(b.is_null()):
            raise AssertionError(f"{name}: nulls differ")
        if dtype == pl.Float64():
            worst = float((a - b).abs().fill_null(0.0).max() or 0.0)  # type: ignore[arg-type]
            if worst > 1e-9:
                raise AssertionError(f"{name}: differs by up to {worst}")
        elif not a.equals(b):
            raise AssertionError(f"{name}: values differ")


def _best_of(repeat: int, action: Callable[[], Any]) -> tuple[float, Any]:
    """The shortest wall time of ``repeat`` runs (like timeit), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def run(rows: int, repeat: int, root: Path) -> dict[str, Any]:
    lake = Lake(root / "data")
    _log(f"building {rows:,} synthetic feedback rows")
    write_days(lake, synthetic_feedback(rows))
    _log(f"vectorized export, best of {repeat}")
    vectorized, stats = _best_of(
        repeat,
        lambda: export_training_pairs(
            lake, END_DAY, DAYS_BACK, MIN_FEEDBACK_FIELDS, "csv", root / "exports", NOW
        ),
    )
    _log(f"vectorized: {vectorized:.3f} s; row-by-row export, best of {repeat} (this takes a while)")
    reference_path = root / "reference.csv"
    row_by_row, reference = _best_of(
        repeat, lambda: export_row_by_row(lake, END_DAY, DAYS_BACK, MIN_FEEDBACK_FIELDS, reference_path)
    )
    _log(f"row-by-row: {row_by_row:.3f} s; comparing outputs")
    assert_same_exports(stats.file, reference_path)
    ours = {k: v for k, v in stats.as_dict().items() if k in reference}
    if ours != reference:
        raise AssertionError(f"counts differ: {ours} vs reference {reference}")
    return {"rows": stats.total, "stats": ours, "vectorized_s": vectorized, "row_by_row_s": row_by_row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation; the best counts")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="fbloop-export-bench-"))
    try:
        result = run(args.rows, args.repeat, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows, fast, slow = result["rows"], result["vectorized_s"], result["row_by_row_s"]
    s = result["stats"]
    print(
        f"machine: {os.cpu_count()} CPUs, polars {pl.__version__}, {pl.thread_pool_size()} threads, "
        f"load average {load:.2f} at start; best of {args.repeat} runs each"
    )
    print(
        f"feedback rows: {rows:,} ({s['deduplicated']:,} duplicates, {s['errors']:,} errors); "
        f"pairs exported: {s['exported']:,}, skipped: {s['skipped']:,}; outputs identical"
    )
    print(f"vectorized:  {fast:8.3f} s  {rows / fast:12,.0f} rows/s")
    print(f"row-by-row:  {slow:8.3f} s  {rows / slow:12,.0f} rows/s")
    print(f"speed-up:    {slow / fast:8.1f}x")


if __name__ == "__main__":
    main()
