"""Typed hand-offs between stages: one frozen dataclass per record, with one writer and one reader.

A stage that hands a result to a later stage (the dataset version and its guard outcomes, the
day's candidate, the evaluation) declares a subclass of `StageRecord` in its own lib package and
names the asset that writes it. The asset writes it with `write`; every consumer reads it with
`read` (or `read_if_present`), so a renamed field is a type error, not a silent None. Records
live next to the asset's partition files (``warehouse/<asset>/<day>.json``), written atomically.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Self

from fbloop_assets.lib.common.lake import Lake, write_json


class MissingRecord(LookupError):
    """The asset that writes the record has not run for that day."""


@dataclasses.dataclass(frozen=True)
class StageRecord:
    """Base of every stage record; ``ASSET`` is the asset that writes it (its only writer)."""

    ASSET: ClassVar[str]

    def write(self, lake: Lake, day: date) -> Path:
        return write_json(dataclasses.asdict(self), lake.record_path(self.ASSET, day))

    @classmethod
    def read_if_present(cls, lake: Lake, day: date) -> Self | None:
        path = lake.record_path(cls.ASSET, day)
        if not path.exists():
            return None
        raw: dict[str, Any] = json.loads(path.read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def newest(cls, lake: Lake) -> Self:
        """The record of the newest loop day the asset was materialized for (by day, not file time)."""
        folder = lake.record_path(cls.ASSET, date.min).parent
        days = sorted(date.fromisoformat(p.stem) for p in folder.glob("*.json")) if folder.is_dir() else []
        if not days:
            raise MissingRecord(f"{cls.ASSET} is not materialized for any day yet: run the daily loop first")
        return cls.read(lake, days[-1])

    @classmethod
    def read(cls, lake: Lake, day: date) -> Self:
        record = cls.read_if_present(lake, day)
        if record is None:
            raise MissingRecord(f"{cls.ASSET} is not materialized for {day}: materialize it first")
        return record
