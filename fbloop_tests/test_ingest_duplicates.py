"""Duplicate ids found by sorted hashes, against the plain definitions they replace for speed:
`later_copies` against polars' `is_first_distinct`, `duplicate_ids` against a count of repeated ids."""

import random

import polars as pl
import pytest

from fbloop_assets.lib.feedback.feedback_ids import duplicate_ids
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


@pytest.mark.parametrize("seed", range(10))
def test_duplicate_ids_count_every_repeated_row_even_under_hash_collisions(seed: int) -> None:
    rng = random.Random(seed)
    pool = [f"signal:s{i}" for i in range(rng.randint(1, 300))] + [None]
    ids = pl.Series("feedback_id", [rng.choice(pool) for _ in range(rng.randint(1, 1500))], dtype=pl.String)
    # few distinct hash values force collisions between different ids, which must not count
    hashes = pl.Series([rng.randrange(7) for _ in range(ids.len())], dtype=pl.UInt32)
    counts = ids.drop_nulls().value_counts(name="n")
    expected = int(counts.filter(pl.col("n") > 1)["n"].sum())
    found, shown = duplicate_ids(ids)
    assert found == expected
    assert set(shown) <= set(counts.filter(pl.col("n") > 1)["feedback_id"].to_list())
    # colliding hashes only widen the rows compared by id: the count stays exact
    assert duplicate_ids(ids, hashes)[0] == expected
