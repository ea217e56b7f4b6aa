"""The web app refuses a large request body with 413 before reading it, announced or chunked."""

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.accounts import Accounts, Reviewer
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.app import create_app
from fbloop_assets.web.common import MAX_BODY
from fbloop_tests.labeling import SECRET, served_app, sign_in, web_client, web_store

MIB = 2**20


@pytest.fixture
def store(lake: Lake, tmp_path: Path) -> LabelStore:
    return web_store(lake, tmp_path / "web.sqlite")


def _post(
    app: object, path: str, total: int, declared: bool, token: str | None = None
) -> tuple[int, bytes, int]:
    """POST ``total`` bytes to ``path`` straight through ASGI, 1 MiB per message, as a server would
    hand them over; (status, body, bytes the app pulled)."""
    pulled = 0
    answer: dict[str, object] = {"body": b""}

    async def receive() -> dict[str, object]:
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += MIB
        return {"type": "http.request", "body": b"x" * MIB, "more_body": True}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer["body"] + message.get("body", b"")  # type: ignore[operator]

    kind = b"application/json" if path.startswith("/api/") else b"application/x-www-form-urlencoded"
    headers = [(b"content-type", kind)] + ([(b"cookie", f"fbloop_session={token}".encode())] if token else [])
    headers.append(
        (b"content-length", str(total).encode()) if declared else (b"transfer-encoding", b"chunked")
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    return int(answer["status"]), answer["body"], pulled  # type: ignore[call-overload, return-value]


@pytest.mark.parametrize("path", ["/api/login", "/login", "/api/labels", "/queue/confirm"])
def test_a_200_mib_chunked_body_is_refused_after_one_chunk(lake: Lake, store: LabelStore, path: str) -> None:
    app = create_app(lake, FbloopConfig(), SECRET, store=store, served=store.served)
    token = None
    if not path.endswith("login"):
        token, _ = Accounts(store.engine).start_session(Reviewer("alice", "reviewer"), 1.0)
    status, body, pulled = _post(app, path, 200 * MIB, declared=False, token=token)
    assert pulled == MIB  # the first message passes the 16 KiB limit; nothing more is read
    assert status == 413 and b"too large (at most 16 KiB)" in body


def test_a_signed_out_post_is_refused_without_reading_its_body(lake: Lake, store: LabelStore) -> None:
    app = create_app(lake, FbloopConfig(), SECRET, store=store, served=store.served)
    assert _post(app, "/api/labels", 200 * MIB, declared=False)[::2] == (401, 0)
    assert _post(app, "/labels", 200 * MIB, declared=False)[::2] == (303, 0)


def test_an_announced_large_body_is_refused_before_any_byte(lake: Lake, store: LabelStore) -> None:
    app = create_app(lake, FbloopConfig(), SECRET, store=store, served=store.served)
    status, body, pulled = _post(app, "/api/login", 200 * MIB, declared=True)
    assert (status, pulled) == (413, 0) and b"too large" in body
    status, _, pulled = _post(app, "/login", MAX_BODY + 1, declared=True)
    assert (status, pulled) == (413, 0)


def test_the_largest_legal_label_still_fits(lake: Lake, store: LabelStore) -> None:
    with web_client(lake, store) as client:
        token = sign_in(client)
        comment = "\N{GRINNING FACE}" * 1000  # 1,000 characters of 4 bytes, 12 once form-encoded
        form = {"csrf_token": token, "recommendation_id": "rec-00001", "label_value": "useful"}
        saved = client.post("/labels", data=form | {"confidence": "0.8", "comment": comment})
        assert saved.status_code == 200 and "Saved: Useful" in saved.text
        assert store.history("alice")[0]["comment"] == comment
        too_long = client.post("/queue/confirm", data=form | {"confidence": "0.8", "comment": comment * 2})
        assert too_long.status_code == 413 and "too large" in too_long.text


def _status_of(sock: socket.socket, out: dict[str, object]) -> None:
    data = b""
    try:
        while b"\r\n" not in data and (chunk := sock.recv(4096)):
            data += chunk
    except OSError:
        pass
    out["status_line"] = data.split(b"\r\n", 1)[0]


def test_a_real_server_answers_413_and_stops_taking_the_body(lake: Lake, store: LabelStore) -> None:
    app = create_app(lake, FbloopConfig(), SECRET, store=store, served=store.served)
    total, sent = 100 * MIB, 0
    with served_app(app) as base:
        sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        sock.settimeout(3)
        sock.sendall(
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        out: dict[str, object] = {}
        reader = threading.Thread(target=_status_of, args=(sock, out))
        reader.start()
        frame = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        started = time.monotonic()
        try:
            while sent < total and "status_line" not in out:
                sock.sendall(frame)
                sent += 0x10000
        except OSError:  # the server closed the connection or stopped reading
            pass
        reader.join(timeout=10)
        sock.close()
    assert out["status_line"] == b"HTTP/1.1 413 Request Entity Too Large"
    assert sent < total / 4 and time.monotonic() - started < 10


def test_a_bad_content_length_is_refused(lake: Lake, store: LabelStore) -> None:
    app = create_app(lake, FbloopConfig(), SECRET, store=store, served=store.served)
    with TestClient(app) as client:
        response = client.post("/api/login", content=b"{}", headers={"content-length": "-5"})
    assert response.status_code == 400
