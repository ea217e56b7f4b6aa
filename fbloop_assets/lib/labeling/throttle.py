"""Throttling of failed sign-ins per account and per client address, kept in fbloop's database.

Every failed sign-in is a row: the name tried, the client's address, the time. An attempt is
refused *before its password is checked* (no Argon2 paid) while, within the last ``window``, that
name has failed ``per_account`` times or that address ``per_client`` times; the refusal says how
long until the oldest of those failures leaves the window (HTTP's Retry-After). Refused attempts
are not recorded, so a guesser who keeps trying gets ``per_account`` guesses per window, and the
owner gets in once the window has passed. The rows live in the database, so a restarted app, or a
second process on the same database, keeps the throttle (migration 0006_sign_in_failures); rows
older than the window are deleted as new failures come in.

A successful sign-in clears its account's failures, not its address's: one good account must not
buy a guesser fresh attempts at the others. The price of per-account throttling is that anyone
can keep a reviewer out for a window by failing on their name; that is the trade for not letting
anyone guess their password.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from fbloop_assets.lib.common.config import LabelingConfig
from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.labeling.accounts import Accounts, Reviewer
from fbloop_assets.lib.labeling.events import iso, utc_now

MAX_KEY = 64  # longer names and addresses are cut to this before they are counted

sign_in_failures = sa.Table(
    "sign_in_failures",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(MAX_KEY), nullable=False),
    sa.Column("client", sa.String(MAX_KEY), nullable=False),
    sa.Column("failed_at", sa.String(40), nullable=False, index=True),
    sa.Index("ix_sign_in_failures_account", "account", "failed_at"),
    sa.Index("ix_sign_in_failures_client", "client", "failed_at"),
)


@dataclass(frozen=True)
class ThrottleLimits:
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_client: int = 20

    @classmethod
    def of(cls, config: LabelingConfig) -> ThrottleLimits:
        return cls(
            timedelta(minutes=config.sign_in_window_minutes),
            config.sign_in_failures_per_account,
            config.sign_in_failures_per_client,
        )


@dataclass(frozen=True)
class SignIn:
    """The outcome of one attempt: the reviewer, or None; ``retry_after`` seconds when throttled."""

    reviewer: Reviewer | None
    retry_after: int | None = None


class SignInThrottle:
    def __init__(
        self, engine: sa.Engine, limits: ThrottleLimits, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.clock = clock

    def _wait(self, conn: sa.Connection, column: sa.Column, key: str, limit: int, now: datetime) -> float:
        """Seconds until ``key`` has fewer than ``limit`` failures in the window (0: it has now)."""
        # the limit-th newest failure in the window: the attempt is allowed once it leaves the window
        oldest_counted = conn.execute(
            sa.select(sign_in_failures.c.failed_at)
            .where(column == key[:MAX_KEY], sign_in_failures.c.failed_at > iso(now - self.limits.window))
            .order_by(sign_in_failures.c.failed_at.desc())
            .offset(limit - 1)
            .limit(1)
        ).scalar()
        if oldest_counted is None:
            return 0.0
        return (datetime.fromisoformat(oldest_counted) + self.limits.window - now).total_seconds()

    def retry_after(self, account: str, client: str) -> int | None:
        """Whole seconds until an attempt for ``account`` from ``client`` is allowed; None: it is now."""
        now = self.clock()
        with self.engine.connect() as conn:
            wait = max(
                self._wait(conn, sign_in_failures.c.account, account, self.limits.per_account, now),
                self._wait(conn, sign_in_failures.c.client, client, self.limits.per_client, now),
            )
        return max(1, math.ceil(wait)) if wait > 0 else None

    def record_failure(self, account: str, client: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                sign_in_failures.delete().where(sign_in_failures.c.failed_at <= iso(now - self.limits.window))
            )
            conn.execute(
                sign_in_failures.insert().values(
                    account=account[:MAX_KEY], client=client[:MAX_KEY], failed_at=iso(now)
                )
            )

    def clear(self, account: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sign_in_failures.delete().where(sign_in_failures.c.account == account[:MAX_KEY]))


def sign_in(accounts: Accounts, throttle: SignInThrottle, name: str, password: str, client: str) -> SignIn:
    """Check the throttle, then the password; record the failure or clear the account's record.

    The caller bounds how many of these run at once: each password check takes 64 MiB.
    """
    wait = throttle.retry_after(name, client)
    if wait is not None:
        return SignIn(None, wait)
    reviewer = accounts.authenticate(name, password)
    if reviewer is None:
        throttle.record_failure(name, client)
    else:
        throttle.clear(name)
    return SignIn(reviewer)
