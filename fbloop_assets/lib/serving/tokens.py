"""Service tokens for the HTTP suggestion API: shown once, stored only as their SHA-256.

A token is ``fbl_`` and 32 random bytes (URL-safe base64), so its SHA-256 needs no salt or slow
hash: nobody can guess a 256-bit secret from its digest. Each token has a name (unique, the
caller it was given to) and one scope: ``suggest`` may ask for slates and read campaigns and
weights; ``read`` may only read. A revoked token stays listed with its revocation time and
never authorizes again. Tokens authorize only the service API; reviewers' sessions never do,
and a token never labels (the labeling app knows only sessions).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from fbloop_assets.lib.common.store import METADATA

SCOPES = ("suggest", "read")
PREFIX = "fbl_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

service_tokens = sa.Table(
    "service_tokens",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class ServiceToken:
    """A token's record (never the token itself)."""

    name: str
    scope: str
    created_at: str
    created_by: str
    revoked_at: str | None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and (self.scope == scope or (self.scope, scope) == ("suggest", "read"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ServiceTokens:
    """The tokens in fbloop's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, name: str, scope: str, actor: str) -> str:
        """A new token for ``name``: returned once, only its hash is stored."""
        if not NAME_PATTERN.match(name):
            raise TokenError(f"a token name is 1-64 letters, digits, '.', '_' or '-': {name!r}")
        if scope not in SCOPES:
            raise TokenError(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})")
        token = PREFIX + secrets.token_urlsafe(32)
        row = {"token_hash": token_hash(token), "name": name, "scope": scope}
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.insert(service_tokens).values(row | {"created_at": _now(), "created_by": actor[:120]})
                )
        except sa.exc.IntegrityError:
            raise TokenError(
                f"a token named {name!r} exists already (revoked ones keep their name)"
            ) from None
        return token

    def list(self) -> list[ServiceToken]:
        query = sa.select(service_tokens).order_by(service_tokens.c.created_at, service_tokens.c.name)
        with self.engine.connect() as connection:
            return [_record(r._mapping) for r in connection.execute(query)]

    def revoke(self, name: str) -> ServiceToken:
        """Revoke the token named ``name`` (revoking twice keeps the first time)."""
        table = service_tokens
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(table)
                .where(table.c.name == name, table.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            row = connection.execute(sa.select(table).where(table.c.name == name)).first()
        if row is None:
            raise TokenError(f"no token named {name!r}")
        return _record(row._mapping)

    def verify(self, token: str) -> ServiceToken | None:
        """The live record of ``token``, or None for an unknown or revoked one."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        query = sa.select(service_tokens).where(service_tokens.c.token_hash == token_hash(token))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        record = _record(row._mapping) if row is not None else None
        return record if record is not None and record.revoked_at is None else None


def _record(row: Any) -> ServiceToken:
    return ServiceToken(**{k: row[k] for k in ("name", "scope", "created_at", "created_by", "revoked_at")})
