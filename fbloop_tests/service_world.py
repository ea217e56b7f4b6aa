"""Helpers shared by the service-API tests: today's reference snapshots, an app, tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
from starlette.testclient import TestClient

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake, write_parquet
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.serving.tokens import ServiceTokens
from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.world import _make_campaigns, _make_creators
from fbloop_assets.web.app import create_app

SECRET = "s" * 48


def today() -> date:
    return datetime.now(UTC).date()


def write_world(lake: Lake, creators: int = 400, day: date | None = None, seed: int = 5) -> list[str]:
    """Creators and campaigns snapshots of ``day`` (today) as the daily run leaves them; campaign ids."""
    params = replace(SimParams(), n_creators=creators)
    rng = np.random.default_rng(seed)
    catalog, _ = _make_creators(params, rng)
    campaigns = _make_campaigns(params, rng, date(2026, 1, 1))
    day = day or today()
    write_parquet(catalog, lake.table_path("creators", day))
    write_parquet(campaigns, lake.table_path("campaigns", day))
    return sorted(campaigns["campaign_id"].to_list())


def service_client(lake: Lake, config: FbloopConfig | None = None) -> TestClient:
    app = create_app(lake, config or FbloopConfig(), SECRET)
    return TestClient(app, raise_server_exceptions=False)


def new_token(lake: Lake, name: str, scope: str = "suggest") -> dict[str, str]:
    """A fresh token's Authorization header."""
    token = ServiceTokens(open_data_store(lake.root)).add(name, scope, actor="test")
    return {"Authorization": f"Bearer {token}"}
