"""The suggestion API under load: concurrent clients against `fbloop serve` on loopback.

For each database (SQLite, PostgreSQL) it writes a simulated catalog of 50,000 creators and 40
campaigns as today's snapshots into a fresh data directory, adds a service token, starts
`fbloop serve --workers N` in a child process (each N of ``--workers``, default 1 and 2) and drives
``POST /api/v1/suggestions`` (k = 10, a fresh request id each) from 50 concurrent asyncio clients
until 5,000 requests are done. Latency is measured in the client, from sending the request to
the last byte of the response, so it includes the queueing behind the other 49 clients. After
the run it counts the slates in the slate log (the goal: exactly one per request, 0 errors,
p99 at most 50 ms on PostgreSQL). A PostgreSQL database ``api_bench_<random>`` is created on
127.0.0.1:5432 and dropped afterwards.

    python benchmarks/api_load.py [--creators 50000] [--requests 5000] [--clients 50]
                                  [--database sqlite,postgres] [--workers 1,2] [--port 8620]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np

from fbloop_assets.lib.common.lake import Lake, write_parquet
from fbloop_assets.lib.common.store import dispose_all, open_store
from fbloop_assets.lib.serving.slate_log import SlateLog
from fbloop_assets.lib.serving.tokens import ServiceTokens
from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.world import _make_campaigns, _make_creators

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SETTLE_SECONDS = 15.0  # building a worker's scoring context on 50,000 creators takes a few seconds


@contextmanager
def _database(kind: str, data: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{data / 'fbloop.sqlite'}"
        return
    import psycopg2

    name = f"api_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        dispose_all()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _world(lake: Lake, creators: int) -> list[str]:
    params = replace(SimParams(), n_creators=creators)
    rng = np.random.default_rng(11)
    catalog, _ = _make_creators(params, rng)
    campaigns = _make_campaigns(params, rng, date(2026, 1, 1))
    today = datetime.now(UTC).date()
    write_parquet(catalog, lake.table_path("creators", today))
    write_parquet(campaigns, lake.table_path("campaigns", today))
    return sorted(campaigns["campaign_id"].to_list())


@contextmanager
def _server(data: Path, url: str, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    env = os.environ | {"FBLOOP_DATA_DIR": str(data), "FBLOOP_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("FBLOOP_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "fbloop_assets.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=data.parent,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("fbloop serve did not start") from None
                time.sleep(0.2)
        if workers > 1:  # the first worker answers; give the others time to build their context
            time.sleep(SETTLE_SECONDS)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _drive(port: int, token: str, campaigns: list[str], requests: int, clients: int) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    retried: dict[str, int] = {}
    issued = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < requests:
            i = issued
            issued += 1
            body = {"campaign_id": campaigns[i % len(campaigns)], "k": 10, "request_id": f"load-{i:06d}"}
            started = time.perf_counter()
            for _attempt in range(2):  # a dropped connection is retried once, with the same request id
                try:
                    response = await http.post("/api/v1/suggestions", json=body, headers=headers)
                    status = str(response.status_code)
                    break
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                    retried[status] = retried.get(status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)
            if status != "200":
                errors[status] = errors.get(status, 0) + 1

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - started
    v = np.asarray(latencies)
    return {
        "seconds": seconds,
        "throughput": requests / seconds,
        "p50": float(np.percentile(v, 50)),
        "p95": float(np.percentile(v, 95)),
        "p99": float(np.percentile(v, 99)),
        "errors": errors,
        "retried": retried,
    }


def run(kind: str, workers: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fbloop-api-load-") as tmp:
        data = Path(tmp) / "data"
        lake = Lake(data)
        campaigns = _world(lake, args.creators)
        with _database(kind, data) as url:
            engine = open_store(url)
            token = ServiceTokens(engine).add("load", "suggest", actor="benchmark")
            with _server(data, url, args.port, workers):
                result = asyncio.run(_drive(args.port, token, campaigns, args.requests, args.clients))
            slates, rows = SlateLog(engine).count()
    errors = sum(result["errors"].values())
    print(
        f"{kind:<10} {workers} worker(s): {args.requests:,} requests from {args.clients} clients in"
        f" {result['seconds']:.1f} s:"
        f" {result['throughput']:.0f} req/s; latency p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms,"
        f" p99 {result['p99']:.1f} ms; errors {errors} {result['errors'] or ''}"
        f" (transport errors retried: {sum(result['retried'].values())} {result['retried'] or ''});"
        f" slates logged {slates:,} ({rows:,} rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--database", default="sqlite,postgres")
    parser.add_argument("--workers", default="1,2", help="worker processes of fbloop serve, each in turn")
    parser.add_argument("--port", type=int, default=8620)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
    for kind in args.database.split(","):
        for workers in (int(n) for n in args.workers.split(",")):
            run(kind, workers, args)


if __name__ == "__main__":
    main()
