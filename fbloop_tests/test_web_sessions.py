"""Sessions live in fbloop's database: sign-out and deactivation end them, expiry is absolute."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from fbloop_assets.cli import main
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.labeling.accounts import Accounts, reviewer_sessions
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_tests.labeling import (
    Clock,
    api_login,
    api_sign_in,
    label_store,
    web_client,
    web_store,
    write_served,
)

START = datetime(2026, 1, 6, 9, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(lake: Lake, tmp_path: Path, clock: Clock) -> LabelStore:
    return web_store(lake, tmp_path / "web.sqlite", clock)


def test_a_copied_cookie_is_worthless_after_sign_out(lake: Lake, store: LabelStore) -> None:
    with web_client(lake, store) as browser, web_client(lake, store) as thief:
        token = api_sign_in(browser)
        thief.cookies.set("fbloop_session", browser.cookies["fbloop_session"])
        assert thief.get("/api/queue").status_code == 200  # a copy works while the session lives
        assert browser.post("/api/logout", headers={"X-CSRF-Token": token}).json() == {"signed_in": False}
        assert thief.get("/api/queue").status_code == 401
        page = thief.get("/queue", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/queue"
        assert (
            'fbloop_session=""' in page.headers["set-cookie"]
            or "fbloop_session=;" in page.headers["set-cookie"]
        )
        assert thief.post("/api/labels", json={}, headers={"X-CSRF-Token": token}).status_code == 401


def test_signing_out_ends_every_session_of_the_reviewer(lake: Lake, store: LabelStore) -> None:
    with web_client(lake, store) as laptop, web_client(lake, store) as phone, web_client(lake, store) as bob:
        token = api_sign_in(laptop)
        api_sign_in(phone)
        api_sign_in(bob, "bob")
        laptop.post("/api/logout", headers={"X-CSRF-Token": token})
        assert phone.get("/api/queue").status_code == 401
        assert bob.get("/api/queue").status_code == 200  # other reviewers keep theirs


def test_deactivating_a_reviewer_ends_their_sessions(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FBLOOP_DATABASE_URL", raising=False)
    write_served(lake, 3)
    store = label_store(open_data_store(lake.root), lake)  # the data directory's own store, as the CLI's
    Accounts(store.engine).add_reviewer("carol", "reviewer", "long enough password")
    with web_client(lake, store) as client:
        assert api_login(client, "carol", "long enough password").status_code == 200
        assert main(["reviewers", "deactivate", "carol", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "reviewer": "carol",
            "role": "reviewer",
            "active": False,
        }
        assert client.get("/api/queue").status_code == 401
        assert api_login(client, "carol", "long enough password").status_code == 401
        assert main(["reviewers", "activate", "carol"]) == 0
        assert api_login(client, "carol", "long enough password").status_code == 200
    assert main(["reviewers", "deactivate", "nobody"]) == 1
    assert "there is no reviewer 'nobody'" in capsys.readouterr().err


def test_a_session_ends_session_hours_after_sign_in_whatever_the_activity(
    lake: Lake, store: LabelStore, clock: Clock
) -> None:
    with web_client(lake, store) as client:
        api_sign_in(client)
        for hours in (1, 4, 8, 11.99):  # a busy reviewer: it does not slide
            clock.now = START + timedelta(hours=hours)
            assert client.get("/api/queue").status_code == 200
        clock.now = START + timedelta(hours=12)
        assert client.get("/api/queue").status_code == 401
        assert client.get("/api/session").json()["signed_in"] is False
        api_sign_in(client)  # signing in again starts a new 12 hours
        clock.now = START + timedelta(hours=23)
        assert client.get("/api/queue").status_code == 200


def test_the_database_keeps_only_the_tokens_hash(lake: Lake, store: LabelStore) -> None:
    with web_client(lake, store) as client:
        api_sign_in(client)
        token = client.cookies["fbloop_session"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(reviewer_sessions)).mappings().all()
    assert len(token) >= 43 and [r["token_hash"] for r in rows] == [
        hashlib.sha256(token.encode()).hexdigest()
    ]
    assert token not in json.dumps([dict(r) for r in rows])
    assert rows[0]["expires_at"] == (START + timedelta(hours=12)).isoformat(timespec="microseconds")


def test_a_session_outlives_a_restart_and_its_csrf_token_is_its_own(lake: Lake, store: LabelStore) -> None:
    with web_client(lake, store) as client:
        token = api_sign_in(client)
        cookie = client.cookies["fbloop_session"]
    with web_client(lake, store) as restarted:  # a new app on the same database
        restarted.cookies.set("fbloop_session", cookie)
        assert restarted.get("/api/session").json() == {"signed_in": True, "csrf_token": token}
        body = {"recommendation_id": "rec-00001", "label_value": "useful", "confidence": 1}
        assert restarted.post("/api/labels", json=body, headers={"X-CSRF-Token": token}).status_code == 201
        with web_client(lake, store) as other:
            other_token = api_sign_in(other, "bob")
        assert other_token != token
        refused = restarted.post("/api/labels", json=body, headers={"X-CSRF-Token": other_token})
        assert refused.status_code == 403
