"""Failed sign-ins are throttled per account and per client address, durably, without paying Argon2."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fbloop_assets.lib.common.config import ConfigError, FbloopConfig, LabelingConfig, parse_config
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.accounts import Accounts, Reviewer
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.app import create_app
from fbloop_tests.labeling import (
    SECRET,
    Clock,
    api_login,
    served_app,
    token_of,
    web_client,
    web_store,
)

START = datetime(2026, 1, 6, 9, tzinfo=UTC)


class CountingAccounts(Accounts):
    """The real accounts, counting password checks and how many ran at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.checks = self.running = self.most_at_once = 0
        self._lock = threading.Lock()

    def authenticate(self, name: str, password: str) -> Reviewer | None:
        with self._lock:
            self.checks += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return super().authenticate(name, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(lake: Lake, tmp_path: Path, clock: Clock) -> LabelStore:
    return web_store(lake, tmp_path / "web.sqlite", clock)


def _app_with_counter(lake: Lake, store: LabelStore) -> tuple[object, CountingAccounts]:
    accounts = CountingAccounts(store.engine, store.clock)
    app = create_app(lake, FbloopConfig(), SECRET, store=store, served=store.served, accounts=accounts)
    return app, accounts


def test_200_wrong_passwords_then_the_right_one_is_refused_until_the_window_passes(
    lake: Lake, store: LabelStore, clock: Clock
) -> None:
    from starlette.testclient import TestClient

    app, accounts = _app_with_counter(lake, store)
    with TestClient(app) as client:
        codes = [api_login(client, "alice", f"guess {i}").status_code for i in range(200)]
        assert codes == [401] * 5 + [429] * 195
        assert accounts.checks == 5  # a throttled attempt pays no Argon2
        refused = api_login(client, "alice")
        assert refused.status_code == 429 and accounts.checks == 5
        assert refused.headers["retry-after"] == str(15 * 60)
        assert refused.json()["error"].startswith("Too many failed sign-ins")
        clock.now = START + timedelta(minutes=14, seconds=59)
        assert api_login(client, "alice").headers["retry-after"] == "1"
        clock.now = START + timedelta(minutes=15)
        assert api_login(client, "alice").status_code == 200


def test_the_throttle_survives_a_restart_and_spares_others(
    lake: Lake, store: LabelStore, clock: Clock
) -> None:
    with web_client(lake, store, address="10.0.0.1") as first:
        assert [api_login(first, "alice", "nope nope").status_code for _ in range(5)] == [401] * 5
    with web_client(lake, store, address="10.0.0.1") as restarted:  # a new app on the same database
        assert api_login(restarted, "alice").status_code == 429
    with web_client(lake, store, address="10.0.0.2") as elsewhere:
        assert api_login(elsewhere, "alice").status_code == 429  # the account is throttled from anywhere
        assert api_login(elsewhere, "bob").status_code == 200  # another account from another address
    with web_client(lake, store, address="10.0.0.1") as same_address:
        assert api_login(same_address, "bob").status_code == 200  # 5 failures are under the address's 20


def test_an_address_that_fails_on_many_names_is_throttled_on_all_of_them(
    lake: Lake, store: LabelStore, clock: Clock
) -> None:
    config = FbloopConfig(labeling=replace(LabelingConfig(), sign_in_failures_per_client=6))
    with web_client(lake, store, config, address="10.0.0.9") as guesser:
        codes = [api_login(guesser, f"name-{i}", "wrong password").status_code for i in range(7)]
        assert codes == [401] * 6 + [429]
        assert api_login(guesser, "bob").status_code == 429  # the right password, from that address
    with web_client(lake, store, config, address="10.0.0.3") as colleague:
        assert api_login(colleague, "bob").status_code == 200


def test_a_successful_sign_in_clears_the_accounts_failures(lake: Lake, store: LabelStore) -> None:
    with web_client(lake, store) as client:
        for _ in range(4):
            assert api_login(client, "alice", "almost right").status_code == 401
        assert api_login(client, "alice").status_code == 200
        assert [api_login(client, "alice", "wrong again").status_code for _ in range(6)] == [401] * 5 + [429]


def test_the_sign_in_page_says_when_to_try_again(lake: Lake, store: LabelStore) -> None:
    config = FbloopConfig(labeling=replace(LabelingConfig(), sign_in_failures_per_account=2))
    with web_client(lake, store, config) as client:
        token = token_of(client.get("/login").text)
        for expected in (401, 401, 429):
            form = {"name": "alice", "password": "wrong password", "csrf_token": token}
            response = client.post("/login", data=form)
            assert response.status_code == expected
        assert "Too many failed sign-ins for this name or from this address; try again in 15 minutes." in (
            response.text
        )
        assert response.headers["retry-after"] == "900" and 'id="name"' in response.text


@pytest.mark.slow
def test_parallel_failed_sign_ins_check_two_passwords_at_a_time(lake: Lake, store: LabelStore) -> None:
    app, accounts = _app_with_counter(lake, store)
    barrier = threading.Barrier(20)

    def attempt(i: int) -> int:
        with httpx.Client(base_url=base, timeout=60) as client:
            token = client.get("/api/session").json()["csrf_token"]
            barrier.wait()
            body = {"name": f"nobody-{i}", "password": "wrong password"}
            return client.post("/api/login", json=body, headers={"X-CSRF-Token": token}).status_code

    with served_app(app) as base, ThreadPoolExecutor(20) as pool:
        started = time.monotonic()
        codes = list(pool.map(attempt, range(20)))
    assert codes == [401] * 20 and accounts.checks == 20
    assert accounts.most_at_once == FbloopConfig().labeling.password_checks_at_once == 2
    print(f"20 parallel failed sign-ins in {time.monotonic() - started:.1f} s, at most 2 checks at once")


def test_retry_after_is_the_first_second_with_room_in_the_window(tmp_path: Path, clock: Clock) -> None:
    import random

    from fbloop_assets.lib.common.store import open_store
    from fbloop_assets.lib.labeling.throttle import SignInThrottle, ThrottleLimits

    limits = ThrottleLimits(timedelta(minutes=15), per_account=4, per_client=1000)
    throttle = SignInThrottle(open_store(f"sqlite:///{tmp_path / 't.sqlite'}"), limits, clock)
    rng = random.Random(5)
    failures: list[int] = []  # seconds after START
    refused = 0
    for now in sorted(rng.sample(range(3 * 3600), 60)):
        clock.now = START + timedelta(seconds=now)

        def in_window(t: int) -> int:  # failures a check at second t counts: the last 900 s, not older
            return sum(t - 900 < f <= t for f in failures)

        # the reference: scan forward second by second for the first one with room
        wait = next(s for s in range(0, 901) if in_window(now + s) < limits.per_account)
        assert throttle.retry_after("alice", "10.0.0.1") == (wait or None)
        if wait:
            refused += 1
        else:
            throttle.record_failure("alice", "10.0.0.1")
            failures.append(now)
    assert len(failures) > 8 and refused > 8


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sign_in_window_minutes", 0),
        ("sign_in_failures_per_account", 0),
        ("sign_in_failures_per_client", -1),
        ("password_checks_at_once", 0),
        ("password_checks_at_once", 65),
        ("session_hours", "nan"),
    ],
)
def test_throttle_settings_have_ranges(key: str, value: object) -> None:
    text = f"[labeling]\n{key} = {value}\n"
    with pytest.raises(ConfigError, match=f"labeling.{key} must be"):
        parse_config(text)
    defaults = parse_config("").labeling
    assert (defaults.sign_in_window_minutes, defaults.sign_in_failures_per_account) == (15, 5)
