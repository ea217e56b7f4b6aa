"""The HTTP suggestion API: tokens, slates, idempotent retries, live weights, canary share, schema."""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from fbloop_assets.cli import main
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.scoring.context import ScoringContext
from fbloop_assets.lib.serving.live import LiveServing, PooledContext
from fbloop_assets.lib.serving.slate_log import SlateLog
from fbloop_assets.lib.serving.tokens import service_tokens
from fbloop_assets.lib.weights.registry import INITIAL, Registry, WeightsVersion
from fbloop_tests.service_world import new_token, service_client, today, write_world

PASSWORD = "correct horse battery staple"


@pytest.fixture
def campaigns(lake: Lake) -> list[str]:
    return write_world(lake)


def _suggest(client, headers, campaign: str, k: int = 5, request_id: str | None = None):  # type: ignore[no-untyped-def]
    body: dict[str, object] = {"campaign_id": campaign, "k": k}
    if request_id is not None:
        body["request_id"] = request_id
    return client.post("/api/v1/suggestions", json=body, headers=headers)


def test_a_token_is_printed_once_and_only_its_hash_is_stored(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "add", "campaign-tool", "--scope", "suggest", "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert main(["tokens", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert token not in listed and json.loads(listed)["tokens"][0]["name"] == "campaign-tool"
    with open_data_store(lake.root).connect() as connection:
        stored = connection.execute(sa.select(service_tokens)).mappings().all()
    assert [r["token_hash"] for r in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in json.dumps([dict(r) for r in stored])
    assert main(["tokens", "add", "campaign-tool", "--scope", "suggest"]) == 1  # names are unique


def test_the_api_refuses_no_token_a_wrong_one_a_revoked_one_and_the_wrong_scope(
    lake: Lake, campaigns: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    client = service_client(lake)
    good = new_token(lake, "tool")
    reader = new_token(lake, "dashboard", scope="read")
    assert _suggest(client, {}, campaigns[0]).status_code == 401
    assert _suggest(client, {"Authorization": "Bearer fbl_not-a-token"}, campaigns[0]).status_code == 401
    assert _suggest(client, {"Authorization": good["Authorization"][7:]}, campaigns[0]).status_code == 401
    assert _suggest(client, reader, campaigns[0]).status_code == 403
    assert client.get("/api/v1/weights/current", headers=reader).status_code == 200
    assert _suggest(client, good, campaigns[0]).status_code == 200
    assert main(["tokens", "revoke", "tool"]) == 0
    refused = _suggest(client, good, campaigns[0])
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert refused.headers["www-authenticate"].startswith("Bearer")
    capsys.readouterr()


def test_a_reviewer_session_cannot_call_the_api_and_a_token_cannot_label(
    lake: Lake, campaigns: list[str]
) -> None:
    client = service_client(lake)
    Accounts(open_data_store(lake.root)).add_reviewer("alice", "reviewer", PASSWORD)
    csrf = client.get("/api/session").json()["csrf_token"]
    signed = client.post(
        "/api/login", json={"name": "alice", "password": PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert signed.status_code == 200
    assert client.get("/api/queue").status_code == 200  # the session works where it belongs
    assert _suggest(client, {}, campaigns[0]).status_code == 401  # but not here
    token = new_token(lake, "tool")
    tokened = service_client(lake)
    label = {"recommendation_id": "rec-x-01", "value": "useful", "confidence": 1.0}
    assert tokened.post("/api/labels", json=label, headers=token).status_code in (401, 403)
    assert tokened.get("/api/queue", headers=token).status_code == 401


def test_a_slate_names_rank_creator_score_propensity_version_and_request(
    lake: Lake, campaigns: list[str]
) -> None:
    client = service_client(lake)
    response = _suggest(client, new_token(lake, "tool"), campaigns[0], k=7)
    assert response.status_code == 200, response.text
    slate = response.json()
    assert slate["weights_version"] == INITIAL.version and slate["arm"] == "production"
    assert [r["rank"] for r in slate["slate"]] == list(range(1, 8))
    assert all(0 < r["propensity"] <= 1 for r in slate["slate"])
    assert len({r["creator_id"] for r in slate["slate"]}) == 7
    logged = SlateLog(open_data_store(lake.root)).get(slate["request_id"])
    assert logged is not None and logged["creator_id"].to_list() == [r["creator_id"] for r in slate["slate"]]
    assert logged["propensity"].to_list() == [r["propensity"] for r in slate["slate"]]
    assert _suggest(client, new_token(lake, "t2"), "no-such-campaign").status_code == 404
    assert (
        client.get(f"/api/v1/campaigns/{campaigns[0]}", headers=new_token(lake, "t3")).json()[
            "eligible_creators"
        ]
        > 0
    )


def test_a_retried_request_gets_the_same_slate_and_is_logged_once(lake: Lake, campaigns: list[str]) -> None:
    client = service_client(lake)
    headers = new_token(lake, "tool")
    first = _suggest(client, headers, campaigns[1], request_id="order-17").json()
    again = _suggest(client, headers, campaigns[1], request_id="order-17").json()
    assert first["slate"] == again["slate"] and (first["replayed"], again["replayed"]) == (False, True)
    # concurrent retries of a new id: one slate stored, every caller gets it
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: _suggest(client, headers, campaigns[1], request_id="order-18"), range(8))
        )
    assert {r.status_code for r in answers} == {200}
    assert len({json.dumps(r.json()["slate"]) for r in answers}) == 1
    assert SlateLog(open_data_store(lake.root)).count() == (2, 10)
    assert _suggest(client, headers, campaigns[2], request_id="order-17").status_code == 409


def test_a_rollback_serves_the_next_request_without_a_restart(
    lake: Lake, campaigns: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    client = service_client(lake)
    headers = new_token(lake, "tool")
    registry = Registry.of(lake)
    newer = registry.save(
        WeightsVersion.create({f: w * 2 + 0.1 for f, w in INITIAL.weights.items()}, INITIAL.version, "test")
    )
    assert _suggest(client, headers, campaigns[0]).json()["weights_version"] == INITIAL.version
    assert main(["promote", newer.version, "--to", "production", "--reason", "test", "--force"]) == 0
    assert _suggest(client, headers, campaigns[0]).json()["weights_version"] == newer.version
    assert (
        client.get("/api/v1/weights/current", headers=headers).json()["production"]["version"]
        == newer.version
    )
    assert main(["rollback", "--reason", "test"]) == 0
    assert _suggest(client, headers, campaigns[0]).json()["weights_version"] == INITIAL.version
    capsys.readouterr()


def test_the_canary_serves_its_share_within_a_binomial_bound(lake: Lake, campaigns: list[str]) -> None:
    client = service_client(lake)  # the default canary share: 0.25
    headers = new_token(lake, "tool")
    registry = Registry.of(lake)
    canary = registry.save(
        WeightsVersion.create({f: -w for f, w in INITIAL.weights.items()}, INITIAL.version, "test")
    )
    registry.move("canary", canary.version, "test canary", actor="test")
    n, share = 600, 0.25
    arms = [
        _suggest(
            client, headers, campaigns[i % len(campaigns)], k=3, request_id=f"r-{uuid.uuid4().hex}"
        ).json()
        for i in range(n)
    ]
    served = [a["weights_version"] for a in arms if a["arm"] == "canary"]
    assert set(served) == {canary.version}
    assert {a["weights_version"] for a in arms if a["arm"] == "production"} == {INITIAL.version}
    # 4.5 standard deviations: a correct router fails this about once in 150,000 runs
    assert abs(len(served) / n - share) <= 4.5 * math.sqrt(share * (1 - share) / n)


def _fuzz(
    op: Any, mode: Any, known: dict[str, str] | None, headers: dict[str, str], seen: Counter[int]
) -> None:
    """Call ``op`` with schemathesis cases of ``mode``; positive cases must pass every default check."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=op.as_strategy(mode, path_parameters=known))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if mode is schemathesis.GenerationMode.POSITIVE:
            case.validate_response(response)  # every default check: status, schema, content type

    run()


def test_schemathesis_finds_no_server_error(lake: Lake, campaigns: list[str]) -> None:
    import schemathesis

    client = service_client(lake)
    headers = new_token(lake, "fuzz")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", client.app)
    statuses: Counter[int] = Counter()
    routes = [
        ("/api/v1/suggestions", "POST"),
        ("/api/v1/campaigns/{campaign_id}", "GET"),
        ("/api/v1/weights/current", "GET"),
    ]
    for path, method in routes:
        for mode in schemathesis.GenerationMode:
            # a real campaign id for the campaign page, so that valid calls reach the scorer too
            known = {"campaign_id": campaigns[0]} if "{campaign_id}" in path else None
            _fuzz(schema[path][method], mode, known, headers, statuses)
    assert {200, 400, 404} <= set(statuses), statuses  # the fuzzing reached the scorer and the refusals


@pytest.mark.postgres
def test_on_postgresql_retries_store_one_slate_and_a_promotion_serves_next(
    lake: Lake, campaigns: list[str], fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FBLOOP_DATABASE_URL", fresh_postgres_url)
    client = service_client(lake)
    headers = new_token(lake, "tool")
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: _suggest(client, headers, campaigns[0], request_id="pg-1"), range(8))
        )
    assert {r.status_code for r in answers} == {200}
    assert len({json.dumps(r.json()["slate"]) for r in answers}) == 1
    assert SlateLog(open_data_store(lake.root)).count() == (1, 5)
    registry = Registry.of(lake)
    newer = registry.save(
        WeightsVersion.create({f: w + 0.3 for f, w in INITIAL.weights.items()}, INITIAL.version, "test")
    )
    registry.move("production", newer.version, "test", actor="test")
    assert _suggest(client, headers, campaigns[0]).json()["weights_version"] == newer.version


def test_a_new_creators_snapshot_is_picked_up_off_the_request_path(lake: Lake, campaigns: list[str]) -> None:
    serving = LiveServing(lake, open_data_store(lake.root), 0.0, 0.4)
    assert serving.refresh_context() is True and serving.refresh_context() is False  # nothing new
    before = serving.context()
    serving.start_refresher(0.05)
    try:
        write_world(lake, creators=150, seed=9)  # a new catalog lands for today
        deadline = time.monotonic() + 10
        while serving.context() is before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert serving.context() is not before
        assert serving.context().catalog.creator_id.size == 150
    finally:
        serving.stop()


def test_the_pooled_context_scores_exactly_as_the_plain_one(lake: Lake, campaigns: list[str]) -> None:
    plain = ScoringContext.from_lake(lake, today())
    pooled = PooledContext.of(plain)
    for campaign in campaigns:
        for _ in range(2):  # computed, then from the cache
            for mine, theirs in zip(
                pooled.scored_pool(campaign, INITIAL.weights),
                plain.scored_pool(campaign, INITIAL.weights),
                strict=True,
            ):
                assert np.array_equal(mine, theirs)
