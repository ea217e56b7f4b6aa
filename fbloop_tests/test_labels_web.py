"""The labeling web app: sign-in, confirm and undo, and its security rules (auth, CSRF, escaping)."""

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from fbloop_assets.lib.common.config import FbloopConfig, LabelingConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.security import session_secret
from fbloop_tests.labeling import PASSWORD, api_sign_in, sign_in, token_of, web_client, web_store


@pytest.fixture
def store(lake: Lake, tmp_path: Path) -> LabelStore:
    return web_store(lake, tmp_path / "web.sqlite")


@pytest.fixture
def client(lake: Lake, store: LabelStore) -> Iterator[TestClient]:
    with web_client(lake, store) as c:
        yield c


def test_label_confirm_undo_and_label_again_through_the_pages(client: TestClient, store: LabelStore) -> None:
    token = sign_in(client)
    queue = client.get("/queue").text
    rec = re.search(r'id="current-recommendation">([^<]+)<', queue).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": token, "recommendation_id": rec, "label_value": "useful", "confidence": "0.8"}
    confirm = client.post("/queue/confirm", data=form)
    assert confirm.status_code == 200 and "Confirm your label" in confirm.text
    assert store.count_events() == {}  # the confirmation step saves nothing
    saved = client.post("/labels", data=form)
    assert "Saved: Useful (sure)" in saved.text
    label_id = store.history("alice")[0]["label_id"]
    undone = client.post(f"/labels/{label_id}/undo", data={"csrf_token": token, "next": "/queue"})
    assert "Undone" in undone.text
    again = client.post("/labels", data=form | {"label_value": "not_useful"})
    assert again.status_code == 200
    history = store.history("alice")
    assert [(h["label_value"], h["retracted_at"] is None) for h in history] == [
        ("not_useful", True),
        ("useful", False),
    ]
    page = client.get("/history").text
    assert page.count(">Undo</button>") == 1 and "undone 20" in page


def test_queue_routes_some_items_to_a_second_reviewer(
    lake: Lake, store: LabelStore, client: TestClient
) -> None:
    config = FbloopConfig(labeling=replace(LabelingConfig(), double_label_share=0.5))
    with web_client(lake, store, config) as alice, web_client(lake, store, config) as bob:
        token = api_sign_in(alice)
        first = alice.get("/api/queue", params={"limit": 200}).json()["items"]
        assert len(first) == 30 and first[0]["priority"] >= first[-1]["priority"]
        for item in first:
            body = {"recommendation_id": item["recommendation_id"], "label_value": "useful", "confidence": 1}
            assert alice.post("/api/labels", json=body, headers={"X-CSRF-Token": token}).status_code == 201
        assert alice.get("/api/queue").json()["items"] == []
        api_sign_in(bob, "bob")
        second = bob.get("/api/queue", params={"limit": 200}).json()["items"]
        assert 0 < len(second) < 30 and all(i["second_opinion"] for i in second)


ENDPOINTS = [
    ("GET", "/queue"),
    ("POST", "/queue/confirm"),
    ("POST", "/labels"),
    ("POST", "/labels/lbl-x/undo"),
    ("GET", "/history"),
    ("GET", "/admin"),
    ("GET", "/api/queue"),
    ("GET", "/api/recommendations/rec-00001"),
    ("POST", "/api/labels"),
    ("POST", "/api/labels/lbl-x/retract"),
    ("GET", "/api/history"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_label_endpoint_refuses_an_unauthenticated_request(
    client: TestClient, store: LabelStore, method: str, path: str
) -> None:
    token = client.get("/api/session").json()["csrf_token"]  # a valid CSRF token, but no sign-in
    body = {
        "recommendation_id": "rec-00001",
        "label_value": "useful",
        "confidence": 1,
        "reviewer_id": "alice",
    }
    response = client.request(
        method,
        path,
        json=body if method == "POST" else None,
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    if path.startswith("/api/"):
        assert response.status_code == 401 and response.json() == {"error": "sign in first"}
    else:
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert store.count_events() == {}


def test_a_forged_reviewer_id_is_ignored(client: TestClient, store: LabelStore) -> None:
    token = sign_in(client, "alice")
    form = {"csrf_token": token, "recommendation_id": "rec-00001", "label_value": "useful", "confidence": "1"}
    client.post("/labels", data=form | {"reviewer_id": "bob", "reviewer": "bob"})
    body = {"recommendation_id": "rec-00002", "label_value": "useful", "confidence": 1, "reviewer_id": "bob"}
    assert client.post("/api/labels", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    assert {h["reviewer_id"] for h in store.history(None)} == {"alice"}
    assert store.history("bob") == []


def test_a_post_without_a_valid_csrf_token_is_refused(
    lake: Lake, client: TestClient, store: LabelStore
) -> None:
    token = sign_in(client)
    form = {"recommendation_id": "rec-00001", "label_value": "useful", "confidence": "1"}
    with web_client(lake, store) as other:  # a token from another session is no good either
        foreign = sign_in(other, "bob")
    for bad in ({}, {"csrf_token": ""}, {"csrf_token": token[:-2] + "xx"}, {"csrf_token": foreign}):
        response = client.post("/labels", data=form | bad)
        assert response.status_code == 403 and "did not come from this site" in response.text
        assert (
            client.post(
                "/api/labels", json=form, headers={"X-CSRF-Token": bad.get("csrf_token", "")}
            ).status_code
            == 403
        )
    label_id = store.record_label("alice", "rec-00003", "useful", 1).label_id
    assert client.post(f"/labels/{label_id}/undo", data={}).status_code == 403
    assert client.post(f"/api/labels/{label_id}/retract").status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert store.count_events() == {"label": 1}
    fresh = TestClient(client.app)
    assert fresh.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 403


def test_injection_attempts_are_stored_inert_and_rendered_escaped(
    client: TestClient, store: LabelStore
) -> None:
    token = sign_in(client)
    script = '<script>alert("pwned")</script>'
    sql = "x'); DROP TABLE label_events; --"
    form = {"csrf_token": token, "recommendation_id": "rec-00001", "label_value": "useful", "confidence": "1"}
    confirm = client.post("/queue/confirm", data=form | {"comment": script})
    assert script not in confirm.text and "&lt;script&gt;" in confirm.text
    client.post("/labels", data=form | {"comment": script})
    client.post("/labels", data=form | {"recommendation_id": "rec-00002", "comment": sql})
    unknown = client.post("/labels", data=form | {"recommendation_id": f"{sql}{script}"})
    assert unknown.status_code == 404 and script not in unknown.text and "&lt;script&gt;" in unknown.text
    stored = {h["recommendation_id"]: h["comment"] for h in store.history("alice")}
    assert stored == {"rec-00001": script, "rec-00002": sql}  # verbatim, and the table is still there
    page = client.get("/history").text
    assert script not in page and "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    api = client.get("/api/history").json()["labels"]
    assert {r["comment"] for r in api} == {script, sql}


def test_errors_are_messages_not_stack_traces(client: TestClient, store: LabelStore) -> None:
    token = sign_in(client)
    bad = client.post(
        "/queue/confirm",
        data={
            "csrf_token": token,
            "recommendation_id": "rec-00001",
            "label_value": "useful",
            "confidence": "2",
        },
    )
    assert bad.status_code == 400 and "confidence must be between 0 and 1" in bad.text
    with store.engine.begin() as conn:  # break the store under the running app
        conn.execute(sa.text("DROP TABLE label_events"))
    broken = client.get("/history")
    assert broken.status_code == 500 and "something went wrong" in broken.text
    assert "Traceback" not in broken.text and "label_events" not in broken.text
    api = client.get("/api/history")
    assert api.status_code == 500 and api.json() == {
        "error": "something went wrong on our side; please try again"
    }
    assert client.get("/no/such/page").status_code == 404


def test_session_cookie_and_security_headers(lake: Lake, store: LabelStore, client: TestClient) -> None:
    response = client.get("/login")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    signed_in = client.post(
        "/login",
        data={"name": "alice", "password": PASSWORD, "csrf_token": token_of(response.text)},
        follow_redirects=False,
    ).headers["set-cookie"]
    assert f"max-age={12 * 3600}" in signed_in.lower() and "httponly" in signed_in.lower()
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    config = FbloopConfig(labeling=replace(LabelingConfig(), https_only=True))
    with web_client(lake, store, config) as secure:
        assert "secure" in secure.get("/login").headers["set-cookie"].lower()


def test_admin_page_is_for_admins(lake: Lake, store: LabelStore, client: TestClient) -> None:
    sign_in(client, "alice")
    assert client.get("/admin").status_code == 403
    with web_client(lake, store) as admin:
        sign_in(admin, "root")
        page = admin.get("/admin")
        assert page.status_code == 200 and "Krippendorff" in page.text


def test_session_secret_is_generated_once_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FBLOOP_SESSION_SECRET", raising=False)
    first = session_secret(tmp_path)
    path = tmp_path / "secrets" / "session_secret"
    assert path.stat().st_mode & 0o777 == 0o600 and len(first) >= 32
    assert session_secret(tmp_path) == first
    monkeypatch.setenv("FBLOOP_SESSION_SECRET", "short")
    with pytest.raises(ValueError, match="at least 32"):
        session_secret(tmp_path)
