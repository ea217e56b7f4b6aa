"""The slate log: what `fbloop suggest` and the API commit, read by the next `raw_recommendations`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time as pytime
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from fbloop_assets.cli import main
from fbloop_assets.defs.ingest.assets import ingestion_assets
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.serving.live import LiveServing
from fbloop_assets.lib.serving.slate_log import SlateLog, slate_log
from fbloop_assets.lib.serving.tokens import ServiceTokens
from fbloop_assets.web.app import create_app
from fbloop_tests.conftest import write_landing
from fbloop_tests.service_world import SECRET, new_token, today, write_world


def _ingest_recommendations(lake: Lake, day: date) -> dg.ExecuteInProcessResult:
    (asset,) = [a for a in ingestion_assets if a.key.path[-1] == "raw_recommendations"]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [asset],
            partition_key=day.isoformat(),
            resources={"fbloop": FbloopResource(data_dir=str(lake.root))},
            instance=instance,
        )
    assert result.success
    return result


def test_logged_slates_reach_raw_recommendations_with_the_landing_checks(lake: Lake) -> None:
    day = today() - timedelta(days=1)  # the newest partition there is: yesterday's
    campaigns = write_world(lake, day=day)
    config = FbloopConfig()
    serving = LiveServing(
        lake,
        open_data_store(lake.root),
        config.canary.share,
        config.serving.temperature,
        clock=lambda: datetime.combine(day, time(12), tzinfo=UTC),
    )
    app = create_app(lake, config, SECRET, serving=serving)
    client = TestClient(app, raise_server_exceptions=False)
    headers = new_token(lake, "tool")
    api = [
        client.post("/api/v1/suggestions", json={"campaign_id": c, "k": 4}, headers=headers).json()
        for c in campaigns[:4]
    ]
    assert not (lake.root / "landing" / "recommendations").exists()  # no file per request
    first = api[0]["slate"][0]
    # a landing file that delivered one of the logged ids first, and a logged row out of contract
    landed = {
        **{k: first[k] for k in ("recommendation_id", "creator_id", "rank", "score", "propensity")},
        "request_id": api[0]["request_id"],
        "campaign_id": campaigns[0],
        "weights_version": "w0",
        "served_at": api[0]["served_at"],
    }
    write_landing(lake, "recommendations", day.isoformat(), "other.jsonl", [landed])
    bad = landed | {"recommendation_id": "rec-bad-01", "request_id": "req-bad", "propensity": 0.0}
    with open_data_store(lake.root).begin() as connection:
        connection.execute(
            sa.insert(slate_log).values(bad | {"served_day": day.isoformat(), "client": "test"})
        )
    _ingest_recommendations(lake, day)
    valid = pl.read_parquet(lake.table_path("raw_recommendations", day))
    rejects = pl.read_parquet(lake.rejects_path("raw_recommendations", day))
    served_ids = {r["recommendation_id"] for a in api for r in a["slate"]}
    assert set(valid["recommendation_id"]) == served_ids and valid.height == 16
    assert valid.filter(pl.col("landing_file") == "slate_log").height == 15  # one came first by file
    assert sorted(zip(rejects["landing_file"], rejects["reason_code"], strict=True)) == [
        ("slate_log", "duplicate"),
        ("slate_log", "invalid_value"),
    ]


def test_fbloop_suggest_commits_to_the_slate_log(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    campaigns = write_world(lake)
    assert main(["suggest", "--campaign", campaigns[0], "--k", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    logged = SlateLog(open_data_store(lake.root)).get(printed["request_id"])
    assert printed["logged_to"] == "slate_log" and logged is not None
    assert logged["recommendation_id"].to_list() == [r["recommendation_id"] for r in printed["slate"]]
    assert not (lake.root / "landing" / "recommendations").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(root: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-m", "fbloop_assets.cli", "serve", "--port", str(port), *extra],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = pytime.monotonic() + 60
    while pytime.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1)
            return process
        except httpx.TransportError:
            pytime.sleep(0.2)
    process.kill()
    raise RuntimeError("fbloop serve did not start")


@pytest.mark.slow
def test_every_answered_slate_survives_a_killed_server(lake: Lake, tmp_path: Path) -> None:
    # SIGKILL mid-load: whatever got a 200 must be in the log after a restart, nothing half-written
    campaigns = write_world(lake, creators=2_000)
    token = ServiceTokens(open_data_store(lake.root)).add("load", "suggest", actor="test")
    port = _free_port()
    server = _start_server(tmp_path, port)
    answered: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(i: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while not stop.is_set():
                request_id = f"kill-{uuid.uuid4().hex}"
                campaign = campaigns[i % len(campaigns)]
                body = {"campaign_id": campaign, "k": 5, "request_id": request_id}
                try:
                    response = http.post(
                        "/api/v1/suggestions", json=body, headers={"Authorization": f"Bearer {token}"}
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    with lock:
                        answered.append((request_id, campaign))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    while len(answered) < 60:
        pytime.sleep(0.05)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    for t in threads:
        t.join()
    server = _start_server(tmp_path, port)
    try:
        log = SlateLog(open_data_store(lake.root))
        missing = [r for r, _ in answered if log.get(r) is None]
        assert missing == [] and len(answered) >= 60
        slates, rows = log.count()
        assert rows == 5 * slates  # no slate half-written
        retried = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/suggestions",
            json={"campaign_id": answered[0][1], "k": 5, "request_id": answered[0][0]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert retried.json()["replayed"] is True
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_worker_processes_share_one_slate_log(lake: Lake, tmp_path: Path) -> None:
    # `fbloop serve --workers 2`: two processes behind one port, one log; a retry is replayed
    # whichever worker takes it
    campaigns = write_world(lake, creators=2_000)
    token = ServiceTokens(open_data_store(lake.root)).add("load", "suggest", actor="test")
    port = _free_port()
    server = _start_server(tmp_path, port, "--workers", "2")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        commands = [Path(f"/proc/{c}/cmdline").read_bytes() for c in children]
        assert sum(b"spawn_main" in c and b"resource_tracker" not in c for c in commands) == 2
        first: dict[str, tuple[str, list[str]]] = {}

        def client(i: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for j in range(15):
                    body = {
                        "campaign_id": campaigns[(i + j) % len(campaigns)],
                        "k": 5,
                        "request_id": f"w-{i}-{j}",
                    }
                    response = http.post("/api/v1/suggestions", json=body, headers=headers)
                    assert response.status_code == 200
                    slate = [r["recommendation_id"] for r in response.json()["slate"]]
                    first[body["request_id"]] = (body["campaign_id"], slate)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(first) == 60
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for request_id, (campaign, slate) in list(first.items())[:20]:
                body = {"campaign_id": campaign, "k": 5, "request_id": request_id}
                again = http.post("/api/v1/suggestions", json=body, headers=headers).json()
                assert again["replayed"] is True
                assert [r["recommendation_id"] for r in again["slate"]] == slate
        assert SlateLog(open_data_store(lake.root)).count() == (60, 300)
    finally:
        server.terminate()  # the supervisor stops its workers
        server.wait(timeout=60)
