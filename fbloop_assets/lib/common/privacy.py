"""Privacy for subject-level (audience member) data: keyed pseudonyms, age buckets, consent.

Subject ids become HMAC-SHA256 pseudonyms under a secret key, never a bare hash that a dictionary
of known ids would reverse. The key comes from ``$FBLOOP_PSEUDONYM_KEY`` (hex or text), else
from the file ``$FBLOOP_PSEUDONYM_KEY_FILE`` (default ``~/.config/fbloop/pseudonym.key``, created
with mode 0600 on first use). The key file must live outside the data directory, so that whoever
can read the data cannot also re-link it. Exact ages become the buckets of `landing.AGE_BUCKETS`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

import polars as pl

from fbloop_assets.lib.common.lake import atomic_path

KEY_ENV = "FBLOOP_PSEUDONYM_KEY"
KEY_FILE_ENV = "FBLOOP_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/fbloop/pseudonym.key")
MIN_KEY_BYTES = 16

# Upper bounds (exclusive) of the age buckets <18, 18-25, 25-35, 35-50, 50+.
_AGE_EDGES = (18, 25, 35, 50)
_AGE_LABELS = ("<18", "18-25", "25-35", "35-50", "50+")


class PrivacyError(ValueError):
    """The pseudonymization key is missing, too short or stored in the wrong place."""


def _decode_key(text: str, origin: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise PrivacyError(f"{origin}: the pseudonymization key must have at least {MIN_KEY_BYTES} bytes")
    return key


def load_key(data_dir: Path) -> bytes:
    """The pseudonymization key: from the environment, else a key file outside ``data_dir``."""
    if os.environ.get(KEY_ENV):
        return _decode_key(os.environ[KEY_ENV], KEY_ENV)
    path = Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser().resolve()
    if path.is_relative_to(data_dir.resolve()):
        raise PrivacyError(
            f"the pseudonymization key file {path} must not be inside the data directory {data_dir}"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
            tmp.chmod(0o600)
    return _decode_key(path.read_text(encoding="utf-8"), str(path))


def pseudonymize(ids: pl.Series, key: bytes) -> pl.Series:
    """HMAC-SHA256 of each id under ``key``, hex; nulls stay null. Hashes each distinct id once."""
    distinct = ids.drop_nulls().unique()
    mapping = {v: hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in distinct.to_list()}
    return ids.replace_strict(mapping, default=None, return_dtype=pl.String).alias(ids.name)


def age_bucket(age: pl.Expr) -> pl.Expr:
    """The bucket label of an exact age; null stays null."""
    bucket: Any = pl.when(age.is_null()).then(pl.lit(None, pl.String))  # Then, then ChainedThen
    for edge, label in zip(_AGE_EDGES, _AGE_LABELS, strict=False):
        bucket = bucket.when(age < edge).then(pl.lit(label))
    return bucket.otherwise(pl.lit(_AGE_LABELS[-1]))


RAW_PERSONAL_COLUMNS = ("subject_id", "subject_age", "landing_url", "comment")
REDACTED = "<redacted>"


def redacted_text(column: str) -> pl.Expr:
    """A column as text for a quarantine record: personal values become ``<redacted>``.

    The original stays in the landing file (the record names file and row), where access is the
    upstream system's business; the quarantine is read by many more people.
    """
    text = pl.col(column).cast(pl.String)
    if column in RAW_PERSONAL_COLUMNS:
        return pl.when(text.is_null()).then(None).otherwise(pl.lit(REDACTED)).alias(column)
    return text.alias(column)


def aggregated_at_ingestion(frame: pl.DataFrame) -> pl.DataFrame:
    """What `aggregated` mode keeps of a raw table: no subject-level value past the landing zone.

    A named subject becomes ``<redacted>`` (so consent is still judged: a subject-level signal
    without the flag stays excluded), age, country, URL and comment become empty. What remains
    of a signal is its recommendation, type, time and value: a count for that recommendation.
    """
    blanked = [
        c for c in (*RAW_PERSONAL_COLUMNS, "subject_country") if c in frame.columns and c != "subject_id"
    ]
    exprs = [pl.lit(None, frame.schema[c]).alias(c) for c in blanked]
    if "subject_id" in frame.columns:
        named = pl.col("subject_id").is_not_null()
        exprs.append(pl.when(named).then(pl.lit(REDACTED)).otherwise(None).alias("subject_id"))
    return frame.with_columns(exprs)


_PSEUDONYM = r"^[0-9a-f]{64}$"
# What a value scan looks for in every text column: a URL (or a bare www. host), an e-mail
# address, and free text, which ids, codes and category values never are: three or more words.
URL_PATTERN = r"(?i)\b(?:https?://|www\.)\S"
EMAIL_PATTERN = r"[\w.+-]+@[\w-]+\.[\w.-]+"
FREE_TEXT_PATTERN = r"\S+\s+\S+\s+\S+"
_VALUE_PATTERNS = (
    ("URLs", URL_PATTERN),
    ("e-mail addresses", EMAIL_PATTERN),
    ("free-text values", FREE_TEXT_PATTERN),
)


def _is_exact_age(column: str) -> bool:
    name = column.lower()
    return name in ("age", "dob") or name.endswith("_age") or "birth" in name


def _value_findings(frame: pl.DataFrame, mode: str, raw_ids: pl.Series | None) -> list[str]:
    """Every text column scanned for URLs, e-mail addresses, free text and the raw subject ids."""
    findings: list[str] = []
    texts = [c for c, t in frame.schema.items() if t == pl.String]
    ids = raw_ids.drop_nulls().unique().cast(pl.String) if raw_ids is not None else None
    for column in texts:
        values = frame[column].drop_nulls()
        for what, pattern in _VALUE_PATTERNS:
            if hits := int(values.str.contains(pattern).sum()):
                findings.append(f"{hits} {what} in column {column!r}")
        # In identifiable mode the subject key is the raw id of a consenting subject, by design.
        scan_ids = ids is not None and ids.len() and not (mode == "identifiable" and column == "subject_key")
        if scan_ids and (hits := int(values.is_in(ids.implode()).sum())):  # type: ignore[union-attr]
            findings.append(f"{hits} raw subject ids in column {column!r}")
    return findings


def personal_data_findings(frame: pl.DataFrame, mode: str, raw_ids: pl.Series | None = None) -> list[str]:
    """What in a normalized frame would expose a person, in every column, not just the subject's.

    Raw columns (`RAW_PERSONAL_COLUMNS`) and exact-age columns (``age``, ``*_age``, ``*birth*``,
    ``dob``); subject keys that are not keyed pseudonyms (pseudonymized mode) or present at all
    (aggregated mode); age buckets that are not buckets; and in every text column: URLs, e-mail
    addresses, free text (three or more words) and, given ``raw_ids`` (the day's raw subject
    ids), any of those ids.
    """
    findings = [f"raw column {c!r} present" for c in RAW_PERSONAL_COLUMNS if c in frame.columns]
    findings += [
        f"exact age column {c!r} present"
        for c in frame.columns
        if _is_exact_age(c) and c not in RAW_PERSONAL_COLUMNS
    ]
    if "subject_key" in frame.columns:
        keys = frame["subject_key"].drop_nulls()
        if mode == "aggregated" and keys.len():
            findings.append(f"{keys.len()} subject keys present in aggregated mode")
        if mode == "pseudonymized" and (bad := int((~keys.str.contains(_PSEUDONYM)).sum())):
            findings.append(f"{bad} subject keys are not HMAC-SHA256 pseudonyms")
    if "age_bucket" in frame.columns:
        odd = frame["age_bucket"].drop_nulls().filter(~frame["age_bucket"].drop_nulls().is_in(_AGE_LABELS))
        if odd.len():
            findings.append(f"{odd.len()} ages are not bucketed (e.g. {odd[0]!r})")
    return findings + _value_findings(frame, mode, raw_ids)
