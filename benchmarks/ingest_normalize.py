"""Benchmark: one simulated day of N outcome signals through ingestion and normalization.

For each size it simulates two days (the second day is the measured one: it holds that day's
reports plus the late arrivals of the first, like any day in steady state), materializes day 1
unmeasured, then materializes day 2 with the real daily job (`fbloop run`) in a fresh process
and reports wall time, signal rows per second and that process's peak resident memory. Beside
the time it prints the floor measured in the same run: polars alone parsing that day's landing
files (every source, each file with the reader its suffix names, in a fresh process), and the
job's time as a multiple of it (goal: at most 10x).

Day 2 is timed with each `dagster.feedback_shards` of ``--shards`` (default 1 and 2) on each
executor of ``--engines``: in process (`fbloop run`, steps one after another: shards save memory,
not time) and multiprocess (`dagster job execute`, one process per step, so the shards of the day
run side by side on the two cores; its peak memory is the largest step process's).

    python benchmarks/ingest_normalize.py                 # 1M and 10M signals
    python benchmarks/ingest_normalize.py --signals 200000 --shards 1 2 4 --engines in_process --json

The target (issue 2): 10M signals in under 60 s and under 4 GiB on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
START = date(2026, 1, 1)
PILOT_SIGNALS = 100_000


def _log(message: str) -> None:
    print(f"benchmark: {message}", file=sys.stderr, flush=True)


def _child(args: list[str], env: dict[str, str]) -> dict:
    """Run one step of this script in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, __file__, "_step", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"step {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _step(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "floor":
        import polars  # noqa: F401 - imported before the clock starts: the floor is parsing alone
    started = time.perf_counter()
    if kind == "floor":
        result = _parse_landing(Path(os.environ["FBLOOP_DATA_DIR"]), date.fromisoformat(argv[1]))
    elif kind == "simulate":
        from fbloop_assets.simulate import simulate

        manifest = simulate(
            Path(os.environ["FBLOOP_DATA_DIR"]), days=2, seed=7, start=START, signals_per_day=int(argv[1])
        )
        result = {
            "day2_signals": manifest["days"][(START + timedelta(days=1)).isoformat()]["outcome_signals"][
                "rows"
            ]
        }
    elif (
        kind == "execute"
    ):  # the job on its configured executor ($FBLOOP_EXECUTOR), as a run outside the queue
        command = [
            "dagster",
            "job",
            "execute",
            "-m",
            "fbloop_assets.definitions",
            "-j",
            "daily_feedback_loop",
        ]
        tags = json.dumps({"dagster/partition": argv[1]})
        subprocess.run([*command, "--tags", tags], check=True, capture_output=True, cwd=PROJECT)
        result = {
            "steps_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        }
    else:
        from fbloop_assets.daily_run import run_day

        summary = run_day(date.fromisoformat(argv[1]))
        result = {
            "signals_read": summary.rows_read["raw_outcome_signals"],
            "rows_read": sum(summary.rows_read.values()),
            "quarantined": summary.quarantined.get("total", 0),
            "normalized": summary.feedback["normalized"],
        }
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def _parse_landing(data_dir: Path, day: date) -> dict:
    """The floor: polars parsing every landing file of ``day`` into frames, nothing else."""
    import polars as pl

    readers: dict[str, Callable[[Path], pl.DataFrame]] = {
        ".csv": pl.read_csv,
        ".jsonl": pl.read_ndjson,
        ".parquet": pl.read_parquet,
    }
    rows = files = unreadable = 0
    for path in sorted((data_dir / "landing").glob(f"*/{day.isoformat()}/*")):
        reader = readers.get(path.suffix)
        if reader is None:
            continue
        files += 1
        try:
            rows += reader(path).height
        except Exception:  # noqa: BLE001 - the simulator's deliberately broken files fail fast here too
            unreadable += 1
    return {"files": files, "rows_parsed": rows, "unreadable": unreadable}


def _environment(workdir: Path) -> dict[str, str]:
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    return os.environ | {
        "FBLOOP_DATA_DIR": str(workdir / "data"),
        "DAGSTER_HOME": str(home),
        "FBLOOP_PSEUDONYM_KEY": os.environ.get("FBLOOP_PSEUDONYM_KEY", "benchmark-key-not-secret-0123456789"),
    }


def _variant(env: dict[str, str], workdir: Path, shards: int, engine: str) -> dict[str, str]:
    """``env`` with `dagster.feedback_shards` = ``shards`` and the executor ``engine``."""
    config = workdir / f"fbloop-{shards}-shards.toml"
    config.write_text(f"[dagster]\nfeedback_shards = {shards}\n", encoding="utf-8")
    return env | {"FBLOOP_CONFIG": str(config), "FBLOOP_EXECUTOR": engine}


def measure(target: int, root: Path, shard_counts: list[int], engines: list[str]) -> list[dict]:
    """Simulate a day of about ``target`` signals and time the daily job on it, each way asked."""
    pilot = _child(["simulate", str(PILOT_SIGNALS)], _environment(root / "pilot"))
    ratio = pilot["day2_signals"] / PILOT_SIGNALS  # day 2 holds this share of the nominal daily volume
    workdir = root / str(target)
    env = _environment(workdir)
    _log(f"{target:,} signals: simulating two days")
    simulated = _child(["simulate", str(round(target / ratio))], env)
    _log(f"{target:,} signals: simulated in {simulated['seconds']} s; running day 1 (not measured)")
    _child(["run", START.isoformat()], env)
    day2 = (START + timedelta(days=1)).isoformat()
    runs = []
    for engine in engines:
        for shards in shard_counts:
            _log(f"{target:,} signals: running day 2 (measured), {shards} shard(s), {engine}")
            variant = _variant(env, workdir, shards, engine)
            # in process: `fbloop run`'s own code path; otherwise the job on that executor (CLI)
            run = _child(["run" if engine == "in_process" else "execute", day2], variant)
            run |= {"target": target, "shards": shards, "engine": engine}
            runs.append(run)
    floor = _child(["floor", day2], env)
    signals = (
        next(r["signals_read"] for r in runs if "signals_read" in r) if engines[0] == "in_process" else None
    )
    for run in runs:
        run["signals_read"] = run.get("signals_read", signals)
        run["rows_read"] = run.get("rows_read")
        run["peak_rss_mib"] = run.get("steps_peak_rss_mib", run["peak_rss_mib"])
        run["rows_per_second"] = round(run["signals_read"] / run["seconds"]) if run["signals_read"] else None
        run["floor_seconds"] = floor["seconds"]
        run["floor_rows"] = floor["rows_parsed"]
        run["ratio_to_floor"] = round(run["seconds"] / max(floor["seconds"], 1e-9), 1)
        _log(
            f"{target:,} signals, {run['shards']} shard(s), {run['engine']}: {run['seconds']} s, "
            f"peak {run['peak_rss_mib']:,} MiB; polars parsing the day's {floor['files']} landing files: "
            f"{floor['seconds']} s ({run['ratio_to_floor']}x)"
        )
    return runs


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | float) else "-"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_step":
        _step(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--shards", type=int, nargs="+", default=[1, 2], help="dagster.feedback_shards to time"
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["in_process", "multiprocess"],
        choices=["in_process", "multiprocess"],
        help="executors to time (in_process first: its summary gives the rows read)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the generated data here (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="fbloop-bench-"))
    try:
        results = [r for n in args.signals for r in measure(n, root, args.shards, args.engines)]
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'signals':>12} {'rows read':>12} {'shards':>6} {'executor':>12} {'seconds':>8} {'signals/s':>11}"
        f" {'peak MiB':>9} {'floor s':>8} {'x floor':>8}"
    )
    for r in results:
        print(
            f"{_number(r['signals_read']):>12} {_number(r['rows_read']):>12}"
            f" {r['shards']:>6} {r['engine']:>12} {r['seconds']:>8} {_number(r['rows_per_second']):>11}"
            f" {r['peak_rss_mib']:>9,}"
            f" {r['floor_seconds']:>8} {r['ratio_to_floor']:>8}"
        )


if __name__ == "__main__":
    main()
