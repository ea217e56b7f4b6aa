"""Privacy: keyed pseudonyms, age buckets, the key's source, and the personal-data scan."""

import hashlib
import hmac
import stat
from pathlib import Path

import polars as pl
import pytest

from fbloop_assets.lib.common.privacy import (
    PrivacyError,
    age_bucket,
    load_key,
    personal_data_findings,
    pseudonymize,
)


def test_age_buckets_have_left_closed_edges() -> None:
    ages = pl.DataFrame({"age": [0, 17, 18, 24, 25, 34, 35, 49, 50, 97, None]})
    buckets = ages.select(age_bucket(pl.col("age"))).to_series().to_list()
    assert buckets == ["<18", "<18", "18-25", "18-25", "25-35", "25-35", "35-50", "35-50", "50+", "50+", None]


def test_pseudonym_is_hmac_sha256_not_a_bare_hash() -> None:
    key = b"k" * 32
    out = pseudonymize(pl.Series("s", ["alice", None, "alice", "bob"]), key).to_list()
    assert out[0] == hmac.new(key, b"alice", hashlib.sha256).hexdigest()
    assert out[0] == out[2] and out[1] is None and out[3] != out[0]
    # a dictionary of bare SHA-256 hashes of known ids must not re-link the pseudonym
    assert out[0] != hashlib.sha256(b"alice").hexdigest()
    assert pseudonymize(pl.Series("s", ["alice"]), b"x" * 32)[0] != out[0]


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FBLOOP_PSEUDONYM_KEY", "ab" * 16)
    assert load_key(tmp_path) == bytes.fromhex("ab" * 16)


def test_short_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FBLOOP_PSEUDONYM_KEY", "short")
    with pytest.raises(PrivacyError, match="at least 16 bytes"):
        load_key(tmp_path)


def test_key_file_is_created_private_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FBLOOP_PSEUDONYM_KEY")
    key_file = tmp_path / "secrets" / "pseudonym.key"
    monkeypatch.setenv("FBLOOP_PSEUDONYM_KEY_FILE", str(key_file))
    first = load_key(tmp_path / "data")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key(tmp_path / "data") == first and len(first) == 32


def test_key_file_inside_the_data_directory_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FBLOOP_PSEUDONYM_KEY")
    monkeypatch.setenv("FBLOOP_PSEUDONYM_KEY_FILE", str(tmp_path / "data" / "key"))
    with pytest.raises(PrivacyError, match="must not be inside the data directory"):
        load_key(tmp_path / "data")


def test_findings_name_raw_columns_unkeyed_ids_and_exact_ages() -> None:
    clean = pl.DataFrame({"subject_key": ["a" * 64, None], "age_bucket": ["18-25", None]})
    assert personal_data_findings(clean, "pseudonymized") == []
    dirty = pl.DataFrame({"subject_id": ["u1"], "subject_key": ["u1"], "age_bucket": ["31"]})
    findings = personal_data_findings(dirty, "pseudonymized")
    assert findings == [
        "raw column 'subject_id' present",
        "1 subject keys are not HMAC-SHA256 pseudonyms",
        "1 ages are not bucketed (e.g. '31')",
    ]
    assert personal_data_findings(clean, "aggregated") == ["1 subject keys present in aggregated mode"]
