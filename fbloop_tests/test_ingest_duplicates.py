"""`later_copies` against polars' own `is_first_distinct` (the definition it replaces for speed)."""

import random

import polars as pl
import pytest

from fbloop_assets.lib.ingest.day import later_copies


def reference(ids: pl.Series) -> list[bool]:
    return (ids.is_not_null() & ~ids.is_first_distinct()).to_list()


@pytest.mark.parametrize("seed", range(20))
def test_later_copies_equal_not_first_distinct(seed: int) -> None:
    rng = random.Random(seed)
    pool = [f"sig-{i}" for i in range(rng.randint(1, 400))] + [None, ""]
    ids = pl.Series("signal_id", [rng.choice(pool) for _ in range(rng.randint(0, 2000))], dtype=pl.String)
    assert later_copies(ids).to_list() == reference(ids)


def test_unique_ids_have_no_later_copies() -> None:
    ids = pl.Series("signal_id", [f"sig-{i}" for i in range(10_000)])
    assert not later_copies(ids).any()


def test_every_later_copy_and_no_null_is_flagged() -> None:
    ids = pl.Series("id", ["a", None, "b", "a", None, "a", "b", "c"])
    assert later_copies(ids).to_list() == [False, False, False, True, False, True, True, False]
