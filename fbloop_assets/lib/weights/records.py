"""The weights registry's records: its tables, weights versions, alias moves and evaluations.

The tables live in fbloop's database (`lib.common.store`); `registry.Registry` reads and writes them.
A WeightsVersion is immutable and content-addressed (see `WeightsVersion.content_id`); an AliasMove is
one append-only entry of the alias history; an Evaluation is one offline evaluation by the loop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import sqlalchemy as sa

from fbloop_assets.lib.common.store import METADATA
from fbloop_assets.lib.scoring.features import FEATURES, INITIAL_WEIGHTS, INITIAL_WEIGHTS_VERSION

ALIASES = ("staging", "canary", "production")
_MOVE_LOCK = 7723002  # advisory-lock key that serializes alias moves on PostgreSQL

versions_table = sa.Table(
    "weights_versions",
    METADATA,
    sa.Column("version", sa.String(40), primary_key=True),
    sa.Column("weights", sa.JSON, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("parent", sa.String(40)),
    sa.Column("dataset_version", sa.String(80)),
    sa.Column("code_version", sa.String(40), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("fit", sa.JSON, nullable=False),
)
evaluations_table = sa.Table(
    "weights_evaluations",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("production", sa.String(40), nullable=False),
    sa.Column("dataset_version", sa.String(80)),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("checks", sa.JSON, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
)
moves_table = sa.Table(
    "alias_moves",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alias", sa.String(20), nullable=False),
    sa.Column("day", sa.String(10)),
    sa.Column("effective_day", sa.String(10), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("from_version", sa.String(40)),
    sa.Column("to_version", sa.String(40)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
)


def code_version() -> str:
    try:
        return package_version("fbloop")
    except PackageNotFoundError:
        return "unknown"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WeightsVersion:
    """Scorer weights with where they came from; never changed once written."""

    version: str
    weights: dict[str, float]
    parent: str | None
    dataset_version: str | None
    created_at: str
    code_version: str = field(default_factory=code_version)
    features: tuple[str, ...] = FEATURES
    fit: dict[str, Any] = field(default_factory=dict)  # how it was fitted (for the record)

    @staticmethod
    def content_id(
        weights: dict[str, float], parent: str | None, dataset_version: str | None, features: tuple[str, ...]
    ) -> str:
        canonical = json.dumps(
            {
                "weights": {f: round(weights[f], 6) for f in features},
                "features": list(features),
                "parent": parent,
                "dataset_version": dataset_version,
            },
            sort_keys=True,
        )
        return "w-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def create(
        cls,
        weights: dict[str, float],
        parent: str | None,
        dataset_version: str | None,
        fit: dict[str, Any] | None = None,
    ) -> WeightsVersion:
        rounded = {f: round(float(weights[f]), 6) for f in FEATURES}
        return cls(
            version=cls.content_id(rounded, parent, dataset_version, FEATURES),
            weights=rounded,
            parent=parent,
            dataset_version=dataset_version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            fit=fit or {},
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"features": list(self.features)}


INITIAL = WeightsVersion(
    version=INITIAL_WEIGHTS_VERSION,
    weights=dict(INITIAL_WEIGHTS),
    parent=None,
    dataset_version=None,
    created_at="2026-01-01T00:00:00+00:00",
    code_version="built-in",
    fit={"method": "hand-set default (see fbloop_assets/lib/scoring/features.py)"},
)


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias; ``to_version`` None clears it (a canary that ended)."""

    id: int
    alias: str
    day: str | None  # the loop day (partition) that decided it; None when made by hand
    effective_day: str  # the first serving day it governs
    at: str  # when it was recorded, UTC
    actor: str  # "loop" or the person (`$FBLOOP_ACTOR`, else the login name) who ran the command
    from_version: str | None
    to_version: str | None
    reason: str
    forced: bool
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """One offline evaluation of a version by the loop."""

    version: str
    day: str
    at: str
    production: str
    dataset_version: str | None
    metrics: dict[str, Any]
    checks: list[dict[str, Any]]
    passed: bool

    def failed_checks(self) -> list[str]:
        def verdict(check: dict[str, Any]) -> str:  # evaluations before guards had no verdict
            return str(check.get("verdict", "pass" if check["passed"] else "fail"))

        return [c["name"] for c in self.checks if verdict(c) == "fail" and c.get("blocking", True)]


class UnknownVersion(LookupError):
    pass


class LaterDecision(ValueError):
    """The alias was already moved by the loop of a later day."""


def _check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise ValueError(f"unknown alias {alias!r} (one of {', '.join(ALIASES)})")
