"""What hostile traffic costs the labeling web app: a huge body, password guessing, parallel sign-ins.

Each scenario starts `fbloop serve` in a fresh child process (so its peak memory is its own) over a
temporary data directory with a small serving log and one reviewer, and reads the server's
resident memory from ``/proc/<pid>/status`` (``VmRSS`` at rest; ``VmHWM``, the peak, reset through
``/proc/<pid>/clear_refs`` just before the scenario):

- ``body``: one unauthenticated ``POST /api/login`` with a 200 MB chunked JSON body, sent over a raw
  socket chunk by chunk until the server answers or stops reading;
- ``guessing``: 200 wrong passwords in a row for one account, then the right one;
- ``parallel``: 20 failed sign-ins at once, for 20 different (unknown) names from one address.

    python benchmarks/web_abuse.py [--body-mb 200] [--guesses 200] [--parallel 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

PASSWORD = "correct horse battery staple"
CHUNK = 64 * 1024


def _memory_mib(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare(data: Path, env: dict[str, str]) -> None:
    folder = data / "landing" / "recommendations" / "2026-01-05"
    folder.mkdir(parents=True)
    rows = [
        f'{{"recommendation_id": "rec-{i}", "request_id": "req-{i // 10}", "campaign_id": "camp-1", '
        f'"creator_id": "cre-{i % 3}", "rank": {i % 10 + 1}, "score": 1.0, "propensity": 0.5, '
        f'"weights_version": "w0", "served_at": "2026-01-05T08:00:00Z"}}\n'
        for i in range(50)
    ]
    (folder / "serving.jsonl").write_text("".join(rows))
    add = [sys.executable, "-m", "fbloop_assets.cli", "reviewers", "add", "alice", "--role", "reviewer"]
    subprocess.run([*add, "--password-stdin"], input=PASSWORD + "\n", env=env, check=True, text=True)


@contextmanager
def fbloop_serve(root: Path) -> Iterator[tuple[str, int]]:
    """`fbloop serve` on a free port over a fresh data directory; (base URL, pid)."""
    data = root / "data"
    env = os.environ | {"FBLOOP_DATA_DIR": str(data), "FBLOOP_SESSION_SECRET": "b" * 48}
    env.pop("FBLOOP_DATABASE_URL", None)
    env.pop("FBLOOP_CONFIG", None)
    _prepare(data, env)
    port = _free_port()
    command = [sys.executable, "-m", "fbloop_assets.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/session", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("fbloop serve did not start") from None
                time.sleep(0.1)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


def _read_status(sock: socket.socket, out: dict[str, object]) -> None:
    buffer = b""
    try:
        while b"\r\n" not in buffer:
            got = sock.recv(4096)
            if not got:
                break
            buffer += got
    except OSError:
        pass
    line = buffer.split(b"\r\n", 1)[0].decode(errors="replace")
    out["status"] = int(line.split()[1]) if line.startswith("HTTP/") else None
    out["answered_at"] = time.monotonic()


def chunked_post(base: str, megabytes: int) -> dict[str, object]:
    """Send a chunked JSON body of ``megabytes`` MB until done or the server stops taking it."""
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    head = b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
    out: dict[str, object] = {}
    reader = threading.Thread(target=_read_status, args=(sock, out))
    reader.start()
    frame = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    sent, total, started = 0, megabytes * 1_000_000, time.monotonic()
    try:
        while sent < total and "status" not in out:
            sock.sendall(frame)
            sent += CHUNK
        sock.sendall(b"0\r\n\r\n")
    except OSError:  # the server stopped reading (timeout) or closed the connection
        pass
    reader.join(timeout=30)
    sock.close()
    answered = out.get("answered_at")
    seconds = (answered - started) if isinstance(answered, float) else None
    return {"status": out.get("status"), "sent_mb": sent / 1_000_000, "seconds": seconds}


def _token(client: httpx.Client) -> str:
    return str(client.get("/api/session").json()["csrf_token"])


def _login(client: httpx.Client, token: str, name: str, password: str) -> httpx.Response:
    return client.post(
        "/api/login", json={"name": name, "password": password}, headers={"X-CSRF-Token": token}
    )


def guessing(base: str, guesses: int) -> dict[str, object]:
    with httpx.Client(base_url=base, timeout=60) as client:
        token = _token(client)
        started = time.monotonic()
        answers = [_login(client, token, "alice", f"wrong guess {i}") for i in range(guesses)]
        seconds = time.monotonic() - started
        right = _login(client, token, "alice", PASSWORD)
    codes = [r.status_code for r in answers]
    first_429 = next((i + 1 for i, c in enumerate(codes) if c == 429), None)
    return {
        "statuses": dict(Counter(codes)),
        "first_429_at_attempt": first_429,
        "retry_after": right.headers.get("retry-after"),
        "right_password": right.status_code,
        "seconds": seconds,
    }


def parallel(base: str, n: int) -> dict[str, object]:
    clients = [httpx.Client(base_url=base, timeout=120) for _ in range(n)]
    tokens = [_token(c) for c in clients]
    barrier = threading.Barrier(n)

    def attempt(i: int) -> int:
        barrier.wait()
        return _login(clients[i], tokens[i], f"nobody-{i}", "wrong guess").status_code

    started = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(attempt, range(n)))
    seconds = time.monotonic() - started
    for c in clients:
        c.close()
    return {"statuses": dict(Counter(codes)), "seconds": seconds}


def _scenario(name: str, run, root: Path) -> None:  # type: ignore[no-untyped-def]
    with fbloop_serve(root / name) as (base, pid):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM: the peak is the scenario's
        before = _memory_mib(pid)
        result = run(base)
        time.sleep(0.5)
        after = _memory_mib(pid)
    print(
        f"{name}: {result}; server memory at rest {before['VmRSS']:.0f} MiB, "
        f"peak {after['VmHWM']:.0f} MiB (+{after['VmHWM'] - before['VmRSS']:.0f} MiB), "
        f"afterwards {after['VmRSS']:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-mb", type=int, default=200)
    parser.add_argument("--guesses", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--only", choices=("body", "guessing", "parallel"))
    args = parser.parse_args()
    import fbloop_assets

    print(f"code under test: {Path(str(fbloop_assets.__file__)).parent}; {os.cpu_count()} CPUs")
    scenarios = {
        "body": lambda base: chunked_post(base, args.body_mb),
        "guessing": lambda base: guessing(base, args.guesses),
        "parallel": lambda base: parallel(base, args.parallel),
    }
    with tempfile.TemporaryDirectory(prefix="web_abuse_") as tmp:
        for name, run in scenarios.items():
            if args.only in (None, name):
                (Path(tmp) / name).mkdir()
                _scenario(name, run, Path(tmp))


if __name__ == "__main__":
    main()
