"""Serving that follows the registry and the lake while it runs: no restart after a promotion.

`LiveServing` is what a long-running server (and `fbloop suggest`) asks for a slate:

- **Weights**: before each request it reads the id of the newest alias move (one indexed query);
  when it changed (`fbloop promote`, `fbloop rollback`, the loop's own promotion or canary move)
  it reloads `Arms` from the registry, so the very next request is served by the new version.
- **Scoring context**: built once at start; `refresh_context` rebuilds it only when the snapshot
  files it was built from changed (a new creators, campaigns or performance partition), and
  `start_refresher` runs that in a background thread, so a request never waits for a rebuild:
  it takes whichever complete context is current.
- **The slate**: routed to production or the canary by the request id (`serve_arms`), committed
  to the slate log (`slate_log.SlateLog`) before it is returned; a known request id returns the
  stored slate (its recommendation ids, derived from the request id, are taken already, so the
  insert fails and the stored slate is read: a new request pays no read).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.scoring.context import NoSuchCampaign, ScoringContext
from fbloop_assets.lib.serving.slate_log import SlateConflict, SlateLog
from fbloop_assets.lib.serving.suggest import Arms, NoEligibleCreator, new_request_id, serve_arms
from fbloop_assets.lib.weights.records import moves_table
from fbloop_assets.lib.weights.registry import Registry

log = logging.getLogger("fbloop.serving")
SNAPSHOTS = ("campaigns", "creators", "creator_performance")
CONTEXT_POLL_SECONDS = 10.0  # a new snapshot lands once a day; 10 s of polling costs a few stat calls


@dataclass(frozen=True)
class PooledContext(ScoringContext):
    """A scoring context that keeps each campaign's eligible pool and φ once computed.

    A pool depends only on the snapshots, not on the weights, so it is computed once per context
    (by `LiveServing.refresh_context`, off the request path) and a request only pays ``w · φ``
    and its draw. The arrays are shared read-only between requests.
    """

    pools: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, context: ScoringContext) -> PooledContext:
        return cls(campaigns=context.campaigns, catalog=context.catalog, sources=context.sources)

    def pool(self, campaign_id: str) -> tuple[np.ndarray, np.ndarray]:
        found = self.pools.get(campaign_id)
        if found is None:  # two threads may both compute it: the same arrays, no harm
            found = self.pools[campaign_id] = super().pool(campaign_id)
        return found


@dataclass(frozen=True)
class Slate:
    """One answered request: who served it and its ranked creators."""

    request_id: str
    campaign_id: str
    weights_version: str
    arm: str
    served_at: datetime
    rows: pl.DataFrame
    replayed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "campaign_id": self.campaign_id,
            "weights_version": self.weights_version,
            "arm": self.arm,
            "served_at": self.served_at.isoformat(),
            "replayed": self.replayed,
            "slate": self.rows.select(
                "rank", "creator_id", "score", "propensity", "recommendation_id"
            ).to_dicts(),
        }


class LiveServing:
    """Slates from the weights in force now and the newest scoring context."""

    def __init__(
        self,
        lake: Lake,
        engine: sa.Engine,
        share: float,
        temperature: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lake, self.engine, self.clock = lake, engine, clock
        self.registry, self.log = Registry(engine), SlateLog(engine)
        self.share, self.temperature = share, temperature
        self._lock = threading.Lock()
        self._last_move: int | None = -1
        self._arms: Arms | None = None
        self._context_key: tuple = ()
        self._context: PooledContext | None = None
        self._stop = threading.Event()

    # weights

    def arms(self) -> Arms:
        """The arms as the registry has them now (reloaded only after an alias moved)."""
        with self.engine.connect() as connection:
            last = connection.execute(sa.select(sa.func.max(moves_table.c.id))).scalar()
        with self._lock:
            if self._arms is None or last != self._last_move:
                self._arms, self._last_move = Arms.current(self.registry, self.share), last
            return self._arms

    # scoring context

    def _snapshot_key(self, now: datetime) -> tuple:
        key = []
        today = now.date()
        # the same snapshots `ScoringContext.from_lake` reads: performance up to the day before
        for asset, up_to in zip(SNAPSHOTS, (today, today, today - timedelta(days=1)), strict=True):
            found = self.lake.latest_partition(asset, up_to)
            path = self.lake.table_path(asset, found) if found else None
            key.append((found, path.stat().st_mtime_ns if path and path.exists() else None))
        return tuple(key)

    def refresh_context(self, now: datetime | None = None) -> bool:
        """Rebuild the scoring context if its snapshots changed; True when it was rebuilt."""
        now = now or self.clock()
        key = self._snapshot_key(now)
        if key == self._context_key and self._context is not None:
            return False
        context = PooledContext.of(ScoringContext.from_lake(self.lake, now.date()))
        for campaign_id in context.campaigns:
            context.pool(campaign_id)
        with self._lock:
            self._context, self._context_key = context, key
        log.info("scoring context rebuilt from %s", context.sources)
        return True

    def context(self) -> ScoringContext:
        if self._context is None:
            self.refresh_context()
        assert self._context is not None
        return self._context

    def start_refresher(self, every_seconds: float) -> threading.Thread:
        """Poll the snapshots every ``every_seconds`` in a daemon thread (`stop` ends it)."""

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                try:
                    self.refresh_context()
                except Exception:  # a half-landed snapshot must not stop serving the last good one
                    log.exception("scoring context refresh failed; serving the previous context")

        thread = threading.Thread(target=loop, name="fbloop-context-refresh", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    # slates

    def _arm_of(self, arms: Arms, version: str) -> str:
        served = {v: arm for arm, v in arms.versions().items()}
        return served.get(version, "retired")

    def suggest(
        self,
        campaign_id: str,
        k: int,
        request_id: str | None,
        client: str,
        rng: np.random.Generator | None = None,
    ) -> Slate:
        """The slate for one request, logged before it is returned (a known request id: its slate)."""
        arms = self.arms()
        context = self.context()
        requests = pl.DataFrame(
            {
                "request_id": [request_id or new_request_id()],
                "campaign_id": [campaign_id],
                "served_at": [self.clock()],
            }
        )
        try:
            context.campaign(campaign_id)  # NoSuchCampaign before anything is drawn
            served = serve_arms(context, arms, requests, k, self.temperature, rng or np.random.default_rng())
        except (NoSuchCampaign, NoEligibleCreator):
            # a retry gets its stored slate even if the campaign has changed or gone since
            if request_id is not None and (stored := self.log.get(request_id)) is not None:
                return self._stored(arms, stored, campaign_id, replayed=True)
            raise
        logged = self.log.record(served, client)
        return self._stored(arms, logged.rows, campaign_id, logged.replayed)

    def _stored(self, arms: Arms, rows: pl.DataFrame, campaign_id: str, replayed: bool) -> Slate:
        first = rows.row(0, named=True)
        if first["campaign_id"] != campaign_id:
            raise SlateConflict(
                f"request id {first['request_id']!r} was already used for campaign {first['campaign_id']!r}"
            )
        return Slate(
            request_id=first["request_id"],
            campaign_id=campaign_id,
            weights_version=first["weights_version"],
            arm=self._arm_of(arms, first["weights_version"]),
            served_at=first["served_at"],
            rows=rows,
            replayed=replayed,
        )
