"""Helpers shared by the labeling tests: a serving log of N recommendations and a store with a clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_tests.conftest import write_landing

PASSWORD = "correct horse battery staple"


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
    served = ServedRecommendations(lake)
    return LabelStore(engine, served, clock) if clock else LabelStore(engine, served)


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
