"""Weights versions and the production pointer, as files under ``<data>/weights/``.

- ``versions/<version>.json``: one immutable WeightsVersion each. The version id is a content
  address, ``w-`` and the first 12 hex digits of the SHA-256 of the weights, the feature list,
  the parent version and the dataset version, so the same fit of the same data is the same
  version. ``w0``, the hand-set default in `features`, is built in and needs no file.
- ``production_history.jsonl``: the append-only history of the production pointer, one move per
  line (the loop day that decided it, when, from which version to which, and why). Production is
  the target of the last move; ``w0`` before the first.

A lock file serializes writers, so two runs cannot interleave a read-modify-write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from fbloop_assets.lib.features import FEATURES, INITIAL_WEIGHTS, INITIAL_WEIGHTS_VERSION
from fbloop_assets.lib.lake import Lake, atomic_path


def code_version() -> str:
    try:
        return package_version("fbloop")
    except PackageNotFoundError:
        return "unknown"


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
    fit={"method": "hand-set default (see fbloop_assets/lib/features.py)"},
)


@dataclass(frozen=True)
class Move:
    """One move of the production pointer."""

    day: str  # the loop day (partition) that decided it
    at: str  # when it was recorded, UTC
    from_version: str
    to_version: str
    reason: str


class UnknownVersion(LookupError):
    pass


class LaterDecision(ValueError):
    """Production was already moved by the loop of a later day."""


class Registry:
    """The weights versions and production history under ``root`` (``<data>/weights``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.history_path = root / "production_history.jsonl"

    @classmethod
    def of(cls, lake: Lake) -> Registry:
        return cls(lake.root / "weights")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _version_path(self, version: str) -> Path:
        return self.root / "versions" / f"{version}.json"

    def save(self, candidate: WeightsVersion) -> WeightsVersion:
        """Store ``candidate`` unless that version exists; return the stored one (first write wins)."""
        path = self._version_path(candidate.version)
        with self._locked():
            if not path.exists():
                with atomic_path(path) as tmp:
                    tmp.write_text(json.dumps(candidate.as_dict(), indent=2, sort_keys=True) + "\n")
        return self.load(candidate.version)

    def load(self, version: str) -> WeightsVersion:
        if version == INITIAL.version:
            return INITIAL
        path = self._version_path(version)
        if not path.exists():
            raise UnknownVersion(f"unknown weights version {version!r} (none in {path.parent})")
        raw = json.loads(path.read_text())
        return WeightsVersion(**(raw | {"features": tuple(raw["features"])}))

    def history(self) -> list[Move]:
        if not self.history_path.exists():
            return []
        lines = self.history_path.read_text(encoding="utf-8").splitlines()
        return [Move(**json.loads(line)) for line in lines if line.strip()]

    def production(self) -> WeightsVersion:
        """The version in force now."""
        moves = self.history()
        return self.load(moves[-1].to_version if moves else INITIAL.version)

    def production_before(self, day: date) -> WeightsVersion:
        """The version in force when the loop for ``day`` started (moves decided on earlier days)."""
        earlier = [m for m in self.history() if m.day < day.isoformat()]
        return self.load(earlier[-1].to_version if earlier else INITIAL.version)

    def move_production(self, day: date, to_version: str, reason: str) -> Move | None:
        """Point production at ``to_version`` as decided by the loop for ``day``.

        Returns the recorded move; None when production already points there. Refuses a move for
        a day earlier than one already decided (a backfill must not undo later decisions).
        """
        self.load(to_version)
        with self._locked():
            moves = self.history()
            current = moves[-1].to_version if moves else INITIAL.version
            if current == to_version:
                return None
            if moves and moves[-1].day > day.isoformat():
                raise LaterDecision(
                    f"production was already moved by the loop for {moves[-1].day}; "
                    f"a decision for the earlier day {day} cannot move it"
                )
            move = Move(
                day=day.isoformat(),
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                from_version=current,
                to_version=to_version,
                reason=reason,
            )
            text = "".join(json.dumps(asdict(m), sort_keys=True) + "\n" for m in [*moves, move])
            with atomic_path(self.history_path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            return move
