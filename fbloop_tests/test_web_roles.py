"""Roles on the web app: analysts read the audit pages and cannot label; reviewers label and, unless
the configuration allows it, cannot read audits; admins do both. Plus the favicon."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fbloop_assets.cli import main
from fbloop_assets.lib.common.config import FbloopConfig, LabelingConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_tests.labeling import PASSWORD, token_of, web_client, web_store

AUDIT_PAGES = [
    "/audit",
    "/audit/effect",
    "/audit/day/2026-01-05",
    "/audit/label/lbl-1",
    "/audit/effect/ingestion.svg",
]


@pytest.fixture
def store(lake: Lake, tmp_path: Path) -> LabelStore:
    store = web_store(lake, tmp_path / "roles.sqlite")
    Accounts(store.engine, store.clock).add_reviewer("ana", "analyst", PASSWORD)
    return store


@pytest.fixture
def client(lake: Lake, store: LabelStore) -> Iterator[TestClient]:
    with web_client(lake, store) as c:
        yield c


def _sign_in(client: TestClient, name: str) -> tuple[str, str]:
    """Sign in as ``name``; where the sign-in led and the new session's CSRF token."""
    page = client.get("/login")
    data = {"name": name, "password": PASSWORD, "csrf_token": token_of(page.text), "next": "/queue"}
    response = client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"], token_of(client.get("/login").text)


def test_an_analyst_reads_audits_and_cannot_label(client: TestClient, store: LabelStore) -> None:
    landed, _ = _sign_in(client, "ana")
    assert landed == "/audit"  # the queue is not theirs: sign-in leads to the audit pages
    token = token_of(client.get("/audit").text)
    for path in AUDIT_PAGES:
        assert client.get(path).status_code == 200, path
    assert client.get("/", follow_redirects=False).headers["location"] == "/audit"
    # every labeling route refuses, with a valid CSRF token and a valid body
    form = {
        "csrf_token": token,
        "recommendation_id": "rec-00000",
        "label_value": "useful",
        "confidence": "0.8",
    }
    assert client.get("/queue").status_code == 403
    assert "analyst account reads the audit pages" in client.get("/queue").text
    assert client.get("/history").status_code == 403
    assert client.post("/queue/confirm", data=form).status_code == 403
    assert client.post("/labels", data=form).status_code == 403
    headers = {"X-CSRF-Token": token}
    assert client.get("/api/queue").status_code == 403
    assert client.post("/api/labels", json=form, headers=headers).status_code == 403
    assert client.get("/admin").status_code == 403
    assert store.count_events() == {}  # nothing was stored


def test_a_reviewer_cannot_read_audits_unless_the_config_allows_it(
    lake: Lake, store: LabelStore, client: TestClient
) -> None:
    landed, _ = _sign_in(client, "alice")
    assert landed == "/queue"
    for path in AUDIT_PAGES:
        response = client.get(path)
        assert response.status_code == 403 and "for analysts and admins" in response.text, path
    assert 'href="/audit"' not in client.get("/queue").text  # no link to what they cannot open
    allowed = FbloopConfig(labeling=replace(LabelingConfig(), reviewers_read_audits=True))
    with web_client(lake, store, allowed) as open_client:
        _sign_in(open_client, "alice")
        for path in AUDIT_PAGES:
            assert open_client.get(path).status_code == 200, path
        assert open_client.get("/queue").status_code == 200


def test_an_admin_labels_and_reads_audits(client: TestClient) -> None:
    _sign_in(client, "root")
    queue = client.get("/queue").text
    assert 'href="/audit"' in queue and 'href="/queue"' in queue
    for path in [*AUDIT_PAGES, "/queue", "/history", "/admin"]:
        assert client.get(path).status_code == 200, path


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/audit/effect", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/audit/effect"
    assert client.get("/api/queue").status_code == 401


def test_audit_addresses_refuse_what_they_cannot_show(client: TestClient) -> None:
    _sign_in(client, "ana")
    assert client.get("/audit/day/not-a-day").status_code == 400
    assert client.get("/audit/weights/w-unknown").status_code == 503  # no Dagster instance given
    assert client.get("/audit/nothing/x").status_code == 404
    assert client.get("/audit/effect/nothing.svg").status_code == 404
    # the label lookup only redirects inside the app
    assert client.get("/audit?label=../../x", follow_redirects=False).status_code == 400
    found = client.get("/audit?label=lbl-9", follow_redirects=False)
    assert found.headers["location"] == "/audit/label/lbl-9"


def test_the_favicon_is_served_locally(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert 'rel="icon" href="/static/favicon.svg"' in client.get("/login").text


def test_the_analyst_role_from_the_command_line(monkeypatch: pytest.MonkeyPatch, lake: Lake) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["reviewers", "add", "ana", "--role", "analyst", "--password-stdin"]) == 0
    from fbloop_assets.lib.common.store import open_data_store

    listed = Accounts(open_data_store(lake.root)).list_reviewers()
    assert [(r.reviewer_id, r.role, r.can_label, r.can_audit()) for r in listed] == [
        ("ana", "analyst", False, True)
    ]
