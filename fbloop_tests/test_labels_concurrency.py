"""20 reviewers label at once through the HTTP API against the real PostgreSQL: nothing lost or doubled.

The server is `fbloop serve` in its own process, as in production; the reviewers are threads here.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_store
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore, label_events
from fbloop_tests.labeling import PASSWORD, write_served

REVIEWERS = 20
LABELS_EACH = 500


def _review(base: str, name: str, recs: list[str]) -> list[str]:
    """Sign in as ``name`` and label every one of ``recs``; the label ids the API returned."""
    ids = []
    with httpx.Client(base_url=base, timeout=60) as client:
        token = client.get("/api/session").json()["csrf_token"]
        login = client.post(
            "/api/login", json={"name": name, "password": PASSWORD}, headers={"X-CSRF-Token": token}
        )
        login.raise_for_status()
        headers = {"X-CSRF-Token": login.json()["csrf_token"]}
        for i, rec in enumerate(recs):
            body = {
                "recommendation_id": rec,
                "label_value": "useful" if i % 3 else "not_useful",
                "confidence": (i % 5 + 1) / 5,
                "reviewer_id": "forged",
            }
            response = client.post(
                "/api/labels", json=body, headers=headers | {"Idempotency-Key": f"{name}-{i}"}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["label_id"])
    return ids


@contextmanager
def fbloop_serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """`fbloop serve` on a free port in a child process (stderr to ``log``); its URL once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "fbloop_assets.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    stderr = log.open("w")
    server = subprocess.Popen(command, env=os.environ | env, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/session", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fbloop serve did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
        stderr.close()


@pytest.mark.postgres
def test_concurrent_reviewers_lose_and_double_nothing(
    fresh_postgres_url: str, lake: Lake, tmp_path: Path
) -> None:
    recs = write_served(lake, LABELS_EACH)
    store = LabelStore(open_store(fresh_postgres_url), ServedRecommendations(lake))
    names = [f"reviewer-{i:02d}" for i in range(REVIEWERS)]
    accounts = Accounts(store.engine)
    for name in names:
        accounts.add_reviewer(name, "reviewer", PASSWORD)
    env = {
        "FBLOOP_DATA_DIR": str(lake.root),
        "FBLOOP_DATABASE_URL": fresh_postgres_url,
        "FBLOOP_SESSION_SECRET": "c" * 48,
    }
    started = time.monotonic()
    with fbloop_serve(env, tmp_path / "serve.log") as base, ThreadPoolExecutor(REVIEWERS) as pool:
        # each reviewer walks the items in a different order, so they collide on the same rows
        orders = [recs[i * 25 :] + recs[: i * 25] for i in range(REVIEWERS)]
        returned = list(pool.map(lambda args: _review(base, *args), zip(names, orders, strict=True)))
    elapsed = time.monotonic() - started
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(label_events.c.label_id, label_events.c.reviewer_id, label_events.c.recommendation_id)
        ).all()
    assert len(rows) == REVIEWERS * LABELS_EACH == 10_000
    assert len({r.label_id for r in rows}) == 10_000
    assert len({(r.reviewer_id, r.recommendation_id) for r in rows}) == 10_000
    assert {r.reviewer_id for r in rows} == set(names)
    assert {i for ids in returned for i in ids} == {r.label_id for r in rows}
    print(f"10,000 labels from {REVIEWERS} concurrent reviewers in {elapsed:.1f} s")
