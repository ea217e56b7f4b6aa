"""Reviewer accounts and their sign-in sessions, in fbloop's database.

Reviewers have a role (``reviewer`` labels, ``analyst`` reads the audit pages but never labels,
``admin`` does both and manages) and a password hashed with Argon2id
(argon2-cffi); the plain password is never stored. A deactivated reviewer cannot sign in, and
deactivating one ends every session they have.

A session is a random token (`secrets.token_urlsafe`, 256 bits) that only the reviewer's browser
holds; the database keeps its SHA-256, so a copy of the database signs nobody in. A session ends
``hours`` after sign-in whatever happens in between (an absolute expiry, not a sliding one), when
its reviewer signs out (which ends every session of that reviewer) or is deactivated. The tables
come from migrations 0003 (reviewers) and 0005_sessions.

What this module does not do: throttle failed sign-ins (`throttle`), cookies and CSRF tokens
(`fbloop_assets.web`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.labeling.events import LabelError, iso, utc_now

ROLES = ("reviewer", "analyst", "admin")
REVIEWER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
MAX_TOKEN = 100  # a session token is 43 characters; anything much longer is not one

reviewers = sa.Table(
    "reviewers",
    METADATA,
    sa.Column("reviewer_id", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)
reviewer_sessions = sa.Table(
    "reviewer_sessions",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("reviewer_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False, index=True),
    sa.Column("flash", sa.JSON),
)

_hasher = PasswordHasher()
# Verified against when the reviewer does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(uuid.uuid4().hex)


@dataclass(frozen=True)
class Reviewer:
    reviewer_id: str
    role: str
    active: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_label(self) -> bool:
        return self.role in ("reviewer", "admin")

    def can_audit(self, reviewers_read_audits: bool = False) -> bool:
        """Analysts and admins read audits; reviewers only where the configuration allows it."""
        return self.role in ("analyst", "admin") or (self.role == "reviewer" and reviewers_read_audits)


@dataclass(frozen=True)
class Session:
    """A live session: whose it is, when it ends, and the one-time message it carries, if any."""

    token_hash: str
    reviewer: Reviewer
    expires_at: datetime
    flash: dict[str, Any] | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Reviewers and sessions on one migrated engine (`lib.common.store.open_store`).

    ``clock`` gives the time of sign-ins and expiries (tests move it past a session's end).
    """

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    # reviewers ---------------------------------------------------------------------------------

    def add_reviewer(self, name: str, role: str, password: str) -> Reviewer:
        if not REVIEWER_NAME.match(name or ""):
            raise LabelError("reviewer name must be 1-64 characters: letters, digits and . _ @ - (not first)")
        if role not in ROLES:
            raise LabelError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if len(password) < MIN_PASSWORD:
            raise LabelError(f"password must have at least {MIN_PASSWORD} characters")
        row = {
            "reviewer_id": name,
            "role": role,
            "password_hash": _hasher.hash(password),
            "created_at": iso(self.clock()),
            "active": True,
        }
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(reviewers.c.reviewer_id).where(reviewers.c.reviewer_id == name)
            ).first():
                raise LabelError(f"reviewer {name!r} already exists")
            conn.execute(reviewers.insert().values(**row))
        return Reviewer(name, role)

    def reviewer(self, name: str) -> Reviewer | None:
        """The active reviewer called ``name``, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(reviewers.c.reviewer_id, reviewers.c.role).where(
                    reviewers.c.reviewer_id == name, reviewers.c.active.is_(True)
                )
            ).first()
        return Reviewer(row.reviewer_id, row.role) if row else None

    def list_reviewers(self) -> list[Reviewer]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(reviewers).order_by(reviewers.c.reviewer_id)).all()
        return [Reviewer(r.reviewer_id, r.role, bool(r.active)) for r in rows]

    def set_active(self, name: str, active: bool) -> Reviewer:
        """(De)activate ``name``; deactivation ends every session of the reviewer at once."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(reviewers).where(reviewers.c.reviewer_id == name)).first()
            if row is None:
                raise LabelError(f"there is no reviewer {name[:80]!r}")
            conn.execute(reviewers.update().where(reviewers.c.reviewer_id == name).values(active=active))
            if not active:
                conn.execute(reviewer_sessions.delete().where(reviewer_sessions.c.reviewer_id == name))
        return Reviewer(name, row.role, active)

    def authenticate(self, name: str, password: str) -> Reviewer | None:
        """The active reviewer if the password matches (Argon2id, 64 MiB), else None; same cost either way."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(reviewers).where(reviewers.c.reviewer_id == name, reviewers.c.active.is_(True))
            ).first()
        stored = row.password_hash if row else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return Reviewer(row.reviewer_id, row.role) if row else None

    # sessions ----------------------------------------------------------------------------------

    def start_session(self, reviewer: Reviewer, hours: float) -> tuple[str, Session]:
        """A new session for ``reviewer``, ending ``hours`` from now: (the token, the session)."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        session = Session(token_hash(token), reviewer, now + timedelta(hours=hours))
        with self.engine.begin() as conn:
            conn.execute(reviewer_sessions.delete().where(reviewer_sessions.c.expires_at <= iso(now)))
            conn.execute(
                reviewer_sessions.insert().values(
                    token_hash=session.token_hash,
                    reviewer_id=reviewer.reviewer_id,
                    created_at=iso(now),
                    expires_at=iso(session.expires_at),
                    flash=None,
                )
            )
        return token, session

    def session(self, token: object) -> Session | None:
        """The live session ``token`` opens: not expired, not ended, its reviewer active; else None."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            return None
        query = (
            sa.select(reviewer_sessions, reviewers.c.role)
            .join(reviewers, reviewers.c.reviewer_id == reviewer_sessions.c.reviewer_id)
            .where(
                reviewer_sessions.c.token_hash == token_hash(token),
                reviewer_sessions.c.expires_at > iso(self.clock()),
                reviewers.c.active.is_(True),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        reviewer = Reviewer(row.reviewer_id, row.role)
        return Session(row.token_hash, reviewer, datetime.fromisoformat(row.expires_at), row.flash)

    def end_sessions(self, reviewer_id: str) -> int:
        """End every session of ``reviewer_id`` (signing out ends them on every device); how many."""
        with self.engine.begin() as conn:
            done = conn.execute(
                reviewer_sessions.delete().where(reviewer_sessions.c.reviewer_id == reviewer_id)
            )
        return int(done.rowcount)

    def set_flash(self, session: Session, flash: dict[str, Any] | None) -> None:
        """Keep (or clear, with None) the message the session's next page shows once."""
        with self.engine.begin() as conn:
            conn.execute(
                reviewer_sessions.update()
                .where(reviewer_sessions.c.token_hash == session.token_hash)
                .values(flash=flash)
            )
