"""Feedback ids for the expectation suite: a stable sample of a large day, and exact duplicates.

A large day (10M rows) is too big for pandas, which Great Expectations validates on: the suite
runs on a deterministic sample of at most ``sample_rows`` rows, the rows with the smallest CRC-32
of their feedback_id (stable across processes and library versions; a null id hashes as 0, so
such rows are always in the sample). A sample cannot prove uniqueness, so feedback_id uniqueness
is checked exactly on every row, comparing ids wherever their hashes collide.
"""

from __future__ import annotations

import zlib

import polars as pl

_HASH_CHUNK = 1_000_000
_SAMPLE_SHOWN = 3


def stable_hash(values: pl.Series) -> pl.Series:
    """CRC-32 of each value's UTF-8 bytes; a null hashes as 0. Stable across processes and versions.

    polars' own ``hash`` may change between versions, which would move a day's sample.
    """
    chunks = (values.slice(i, _HASH_CHUNK) for i in range(0, values.len(), _HASH_CHUNK))
    # bytes straight into zlib (crc32 of b"" is 0); chunked, so a 10M-row day is never one list
    parts = [
        pl.Series(list(map(zlib.crc32, c.cast(pl.Binary).fill_null(b"").to_list())), dtype=pl.UInt32)
        for c in chunks
    ]
    return pl.concat(parts).rename(values.name) if parts else pl.Series(values.name, [], dtype=pl.UInt32)


def sample_by_id(ids: pl.Series, limit: int, hashes: pl.Series | None = None) -> pl.Series:
    """Row positions of the ``limit`` rows with the smallest `stable_hash` of their id, in row order.

    Ties on the last hash value taken are broken by id, then by position.
    """
    hashes = stable_hash(ids) if hashes is None else hashes
    if hashes.len() <= limit:
        return pl.Series("row", range(hashes.len()), dtype=pl.UInt32)
    threshold = hashes.bottom_k(limit).max()
    keyed = pl.DataFrame({"h": hashes, "id": ids}).with_row_index("row")
    below = keyed.filter(pl.col("h") < threshold)
    ties = keyed.filter(pl.col("h") == threshold).sort("id", "row", nulls_last=False)
    return pl.concat([below["row"], ties["row"].head(limit - below.height)]).sort()


def duplicate_ids(ids: pl.Series, hashes: pl.Series | None = None) -> tuple[int, list[str]]:
    """(rows whose non-null id occurs more than once, a few of those ids), exact, over every row.

    Equal ids have equal hashes: only rows whose hash repeats (a few thousand CRC-32 collisions in
    10M ids) are compared by id, which is several times faster than hashing every string again.
    """
    hashes = stable_hash(ids) if hashes is None else hashes
    # repeated hashes found by sorting: polars' hash-table is_duplicated over 10M values took 3x longer
    ordered = hashes.sort()
    repeated_hashes = ordered.filter(ordered == ordered.shift(1)).unique()
    candidates = ids.filter(hashes.is_in(repeated_hashes.implode())).drop_nulls()
    repeated = candidates.is_duplicated()
    shown = candidates.filter(repeated).unique(maintain_order=True).head(_SAMPLE_SHOWN).to_list()
    return int(repeated.sum()), shown
