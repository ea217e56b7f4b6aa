"""Helpers shared by the labeling tests: a serving log, a store with a clock, the web app's client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_store
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.app import create_app
from fbloop_tests.conftest import write_landing

PASSWORD = "correct horse battery staple"
SECRET = "s" * 48


def write_served(lake: Lake, n: int, day: str = "2026-01-05", campaign: str = "camp-1") -> list[str]:
    """A serving log of ``n`` recommendations (slates of 10) landed on ``day``; their ids."""
    rows = [
        {
            "recommendation_id": f"rec-{i:05d}",
            "request_id": f"req-{i // 10}",
            "campaign_id": campaign,
            "creator_id": f"cre-{i % 2 + 1}",
            "rank": i % 10 + 1,
            "score": 1.0,
            "propensity": 0.05 + (i % 10) / 12,
            "weights_version": "w0",
            "served_at": f"{day}T08:00:00Z",
        }
        for i in range(n)
    ]
    write_landing(lake, "recommendations", day, f"serving_{n}.jsonl", rows)
    return [r["recommendation_id"] for r in rows]


class Clock:
    """A settable clock for the store: events land on the days a test chooses."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, text: str) -> None:
        self.now = datetime.fromisoformat(text).astimezone(UTC)


def label_store(engine: sa.Engine, lake: Lake, clock: Clock | None = None) -> LabelStore:
    served = ServedRecommendations(lake, clock) if clock else ServedRecommendations(lake)
    return LabelStore(engine, served, clock) if clock else LabelStore(engine, served)


def web_store(lake: Lake, path: Path, clock: Clock | None = None, n: int = 30) -> LabelStore:
    """A store over a serving log of ``n`` recommendations with reviewers alice, bob and root (admin)."""
    write_served(lake, n)
    store = label_store(open_store(f"sqlite:///{path}"), lake, clock)
    accounts = Accounts(store.engine, store.clock)
    accounts.add_reviewer("alice", "reviewer", PASSWORD)
    accounts.add_reviewer("bob", "reviewer", PASSWORD)
    accounts.add_reviewer("root", "admin", PASSWORD)
    return store


def web_client(
    lake: Lake, store: LabelStore, config: FbloopConfig | None = None, address: str = "testclient"
) -> TestClient:
    """A client of a new web app over ``store`` (same engine and clock), from client ``address``."""
    app = create_app(lake, config or FbloopConfig(), SECRET, store=store, served=store.served)  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str = "alice") -> str:
    """Sign in through the pages; the CSRF token of the new session."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"name": name, "password": PASSWORD, "csrf_token": token_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return token_of(client.get("/queue").text)


def api_token(client: TestClient) -> str:
    return str(client.get("/api/session").json()["csrf_token"])


def api_login(client: TestClient, name: str = "alice", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """``POST /api/login`` with the visitor's CSRF token; the response."""
    headers = {"X-CSRF-Token": api_token(client)}
    return client.post("/api/login", json={"name": name, "password": password}, headers=headers)


def api_sign_in(client: TestClient, name: str = "alice") -> str:
    """Sign in through the API; the CSRF token of the new session."""
    response = api_login(client, name)
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


@contextmanager
def served_app(app: object) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a background thread on a free port; yield its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
