"""Hostile landing days for the ingestion fuzzer: what a day's files hold, and what must become of it.

A `LandingDay` is a plan: for each of the five sources some files, each in one of the three
formats, each a list of records. A record is a good row, a row with exactly one defect (a blank
required value, a value of the wrong type, one out of range, a future or pre-serving timestamp, a
duplicate id, an unknown recommendation, a subject without consent, or harmless oddities: huge
or nested text, padded numbers), or, in text formats, a line no reader can split (invalid UTF-8,
malformed JSON, a JSON array or `NaN`, nesting thousands deep, a CSV line with too few or too
many fields, a quote never closed). A whole file may be hostile too: another delimiter,
unrelated columns, a truncated Parquet file, another file type, an empty file. Every record
carries the outcome the contract promises for it, so the test can compare exactly.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import strategies as st

from fbloop_assets.lib.ingest.landing import COLUMNS, ID_COLUMN, SOURCES

DAY_START = datetime.fromisoformat("2026-01-05T00:00:00+00:00")
DAY_END = DAY_START + timedelta(days=1)
FORMATS = ("csv", "jsonl", "parquet")
EVENT = {"recommendations": "served_at", "outcome_signals": "timestamp", "labels": "labeled_at"}
ROW_DEFECTS = ("blank", "malformed", "invalid", "future", "duplicate", "huge", "padded", "nested")
FEEDBACK_DEFECTS = ("unknown", "early", "skewed", "no_consent")
LINE_DEFECTS = {
    "csv": ("short", "long", "quote", "utf8"),
    "jsonl": ("truncated", "array", "nan", "deep", "utf8"),
}
FILE_DEFECTS = {
    "csv": ("semicolon", "unrelated", "suffix", "empty"),
    "jsonl": ("unrelated", "empty"),
    "parquet": ("unrelated", "truncated", "empty"),
}
INVALID = {
    "creators": ("engagement_rate", 1.7),
    "campaigns": ("objective", "virality"),
    "recommendations": ("propensity", 1.5),
    "outcome_signals": ("metric_value", -5.0),
    "labels": ("label_value", "maybe"),
}
TEXT_COLUMN = {"creators": "niche", "campaigns": "brand", "recommendations": "weights_version"}
TEXT_COLUMN |= {"outcome_signals": "source", "labels": "reviewer_id"}


@dataclass
class Record:
    values: dict[str, Any] | None  # None: a raw line
    expect: str  # "valid", or the reason code ingestion gives it
    line: bytes = b""
    after: str = "feedback"  # valid signals and labels: feedback, clamped, excluded or a reason code
    kind: str = "good"  # the trouble it was made with


@dataclass
class LandingFile:
    source: str
    name: str
    fmt: str
    records: list[Record] = field(default_factory=list)
    whole: str | None = None  # the reason code of a file refused whole
    defect: str = ""


@dataclass
class LandingDay:
    files: list[LandingFile] = field(default_factory=list)
    served: dict[str, datetime] = field(default_factory=dict)  # the clean recommendations


def _good(source: str, n: int, rng: random.Random, day: LandingDay) -> dict[str, Any]:
    at = DAY_START + timedelta(minutes=rng.randint(30, 22 * 60))
    if source == "creators":
        return {
            "creator_id": f"cre-{n}",
            "niche": "fitness",
            "platform": "tiktok",
            "follower_count": 1200,
            "engagement_rate": 0.03,
            "audience_age_bucket": "18-25",
            "audience_country": "DE",
            "cost_per_post": 150.0,
            "posts_per_week": 3.0,
        }
    if source == "campaigns":
        return {
            "campaign_id": f"camp-{n}",
            "brand": "Acme",
            "objective": "conversions",
            "target_niches": "fitness;food",
            "min_followers": 100,
            "max_followers": 10**6,
            "target_age_buckets": "18-25",
            "target_countries": "DE;FR",
            "min_engagement_rate": 0.01,
            "cadence_posts_per_week": 2.0,
            "budget": 5000.0,
            "start_date": "2026-01-01",
            "end_date": "2026-02-01",
        }
    if source == "recommendations":
        return {
            "recommendation_id": f"rec-{n}",
            "request_id": "req-1",
            "campaign_id": "camp-1",
            "creator_id": "cre-1",
            "rank": rng.randint(1, 10),
            "score": 1.5,
            "propensity": rng.choice([0.25, 1.0, 1e-6]),
            "weights_version": "w0",
            "served_at": at,
        }
    rec = rng.choice(sorted(day.served)) if day.served else "rec-unserved"
    after = day.served[rec] + timedelta(minutes=rng.randint(0, 60)) if rec in day.served else at
    when = min(after, DAY_END - timedelta(seconds=1))
    if source == "outcome_signals":
        subject = rng.random() < 0.3
        return {
            "signal_id": f"sig-{n}",
            "source": "shop_pixel",
            "event_type": "conversion" if subject else "click",
            "metric_value": 1.0,
            "timestamp": when,
            "recommendation_id": rec,
            "subject_id": f"sub-{n}" if subject else None,
            "subject_age": rng.randint(0, 130) if subject else None,
            "subject_country": "FR" if subject else None,
            "consent_analytics": True if subject else None,
            "landing_url": "https://shop.example/p?x=1,2",
        }
    return {
        "label_id": f"lab-{n}",
        "reviewer_id": "rev-1",
        "recommendation_id": rec,
        "label_value": "useful",
        "confidence": rng.choice([0.0, 0.5, 1.0]),
        "labeled_at": when,
        "comment": rng.choice([None, "fine", 'a "quoted", two-line\ncomment']),
    }


def _defective(
    source: str,
    fmt: str,
    defect: str,
    row: dict[str, Any],
    rng: random.Random,
    day: LandingDay,
    clean_ids: list[str],
) -> Record | None:
    """``row`` with one ``defect`` and the outcome it must have; None where the defect does not apply."""
    typed = [c for c in COLUMNS[source] if c.dtype != pl.String() and c.required]
    if defect == "blank":
        row[rng.choice([c.name for c in COLUMNS[source] if c.required])] = None
        return Record(row, "missing_field")
    if defect == "malformed":
        row[rng.choice(typed).name] = rng.choice(["n/a", "inf", "2026-01-05 10:00:00", "1.5.2"])
        return Record(row, "malformed_value")
    if defect == "invalid":
        name, value = INVALID[source]
        row[name] = value
        return Record(row, "invalid_value")
    if defect == "future" and source in EVENT:
        row[EVENT[source]] = DAY_END + timedelta(hours=rng.randint(0, 48), seconds=1)
        return Record(row, "future_timestamp")
    if defect == "duplicate" and clean_ids:
        row[ID_COLUMN[source]] = rng.choice(clean_ids)
        return Record(row, "duplicate")
    if defect == "huge":
        row[TEXT_COLUMN[source]] = "é" * rng.choice([1, 70_000]) + "\u2603"
        return Record(row, "valid")
    if defect == "padded" and fmt != "parquet":
        name = rng.choice([c.name for c in typed if c.dtype in (pl.Int64(), pl.Float64())])
        row[name] = f"  {row[name]!r}  "
        return Record(row, "valid")
    if defect == "nested" and fmt == "jsonl":
        nested_text = rng.random() < 0.5
        row[TEXT_COLUMN[source] if nested_text else rng.choice(typed).name] = {"n": [1, {"m": None}]}
        return Record(row, "valid" if nested_text else "malformed_value")
    if source not in ("outcome_signals", "labels") or defect not in FEEDBACK_DEFECTS:
        return None
    rec, event = row["recommendation_id"], EVENT[source]
    if defect == "unknown":
        row["recommendation_id"] = f"rec-ghost-{rng.randint(0, 9)}"
        return Record(row, "valid", after="unknown_recommendation")
    if rec not in day.served:
        return None
    if defect in ("early", "skewed"):
        minutes = rng.uniform(5.5, 900) if defect == "early" else rng.uniform(0.01, 4.9)
        row[event] = day.served[rec] - timedelta(minutes=minutes)
        return Record(row, "valid", after="before_serving" if defect == "early" else "clamped")
    if source == "outcome_signals":
        row |= {"subject_id": f"sub-x{rng.randint(0, 99)}", "consent_analytics": rng.choice([False, None])}
        return Record(row, "valid", after="excluded")
    return None


def _line(fmt: str, defect: str, width: int, rng: random.Random) -> bytes:
    if defect == "short":
        return b",".join([b"x"] * rng.randint(1, width - 1))
    if defect == "long":
        return b",".join([b"x"] * (width + rng.randint(1, 3)))
    if defect == "quote":
        return b",".join([b"x"] * width) + b',"never closed'
    if defect == "utf8":
        return (
            (b"x," * (width - 1) if fmt == "csv" else b'{"a": "')
            + b"caf\xe9 \xff"
            + (b"" if fmt == "csv" else b'"}')
        )
    if defect == "truncated":
        return b'{"signal_id": "s", "metric_value": '
    if defect == "array":
        return rng.choice([b"[1, 2]", b'"text"', b"3", b"null"])
    if defect == "nan":
        return b'{"confidence": NaN}'
    return b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # deep


@st.composite
def landing_days(draw: st.DrawFn) -> LandingDay:
    """A day of landing files of all five sources (see the module docstring).

    Hypothesis draws the shape (files per source, records per file) and a seed; a generator
    seeded with it draws formats and the kind of each file and record, so that every kind of
    trouble is about as frequent as the others and the combinations vary.
    """
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    day = LandingDay()
    counter = 0
    for source in SOURCES:
        clean_ids: list[str] = []  # in the order ingestion reads them: the targets of duplicates
        for i in range(draw(st.integers(0 if source in ("creators", "campaigns") else 1, 2))):
            fmt = rng.choice(FORMATS)
            file = LandingFile(source, f"f{i}.{fmt}", fmt)
            if rng.random() < 0.15:
                file.defect = rng.choice(FILE_DEFECTS[fmt])
            kinds = ("good",) * 4 + ROW_DEFECTS + FEEDBACK_DEFECTS * 2 + LINE_DEFECTS.get(fmt, ())
            # a served recommendation first, so that signals and labels have something to refer to
            first = ["good"] if source == "recommendations" and i == 0 else []
            for kind in first + [rng.choice(kinds) for _ in range(draw(st.integers(0, 12)))]:
                counter += 1
                file.records.append(_record(source, fmt, kind, counter, rng, day, clean_ids))
                if not file.defect:
                    _remember(file.source, file.records[-1], day, clean_ids)
            _settle(file)
            day.files.append(file)
    return day


def _record(
    source: str, fmt: str, kind: str, n: int, rng: random.Random, day: LandingDay, clean_ids: list[str]
) -> Record:
    row = _good(source, n, rng, day)
    if kind in LINE_DEFECTS.get(fmt, ()):
        width = len(COLUMNS[source]) + 1  # the CSV header also has a column "extra"
        reason = "invalid_utf8" if kind == "utf8" else "unparseable_line"
        return Record(None, reason, _line(fmt, kind, width, rng), kind=f"{fmt}:{kind}")
    record = None if kind == "good" else _defective(source, fmt, kind, row, rng, day, clean_ids)
    if record is not None:
        record.kind = kind
    record = record or Record(row, "valid")
    refers = source in ("outcome_signals", "labels") and record.after == "feedback"
    if refers and row["recommendation_id"] not in day.served:
        record.after = "unknown_recommendation"
    return record


def _remember(source: str, record: Record, day: LandingDay, clean_ids: list[str]) -> None:
    if record.expect == "valid" and record.values is not None:
        row_id = record.values[ID_COLUMN[source]]
        clean_ids.append(row_id)
        if source == "recommendations":
            day.served[row_id] = record.values["served_at"]


def _settle(file: LandingFile) -> None:
    """A hostile file's fate: the reason it is refused whole with, its name, its records."""
    whole = {"semicolon": "wrong_columns", "unrelated": "wrong_columns", "truncated": "unparseable_file"}
    whole |= {"suffix": "unparseable_file", "empty": None if file.fmt == "jsonl" else "unparseable_file"}
    if file.defect:
        file.whole = whole[file.defect]
        file.name = file.name.replace(".csv", ".json") if file.defect == "suffix" else file.name
        if file.defect == "empty":
            file.records = []


def _text(value: Any, rng: random.Random) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat(sep=rng.choice("T "), timespec=rng.choice(["seconds", "microseconds"]))
        return text.replace("+00:00", "Z") if rng.random() < 0.5 else text
    if isinstance(value, bool):
        return rng.choice(["true", "TRUE", "yes", "1"] if value else ["false", "No", "0"])
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict) else repr(value)


def _csv(file: LandingFile, columns: list[str], rng: random.Random, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(columns)
    lines = [out.getvalue().encode()]
    for record in file.records:
        if record.values is None:
            lines.append(record.line + b"\n")
            continue
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(
            [_text(record.values.get(c), rng) for c in columns]
        )
        lines.append(out.getvalue().encode())
    return b"".join(lines)


def _jsonl(file: LandingFile, rng: random.Random) -> bytes:
    lines = []
    for record in file.records:
        if record.values is None:
            lines.append(record.line)
            continue
        row = {
            k: _text(v, rng) if isinstance(v, datetime) or rng.random() < 0.3 else v
            for k, v in record.values.items()
        }
        lines.append(
            json.dumps({k: v for k, v in row.items() if v is not None or rng.random() < 0.5}).encode()
        )
    return b"".join(line + b"\n" for line in lines)


def _parquet(rows: list[dict[str, Any]], names: list[str], rng: random.Random) -> bytes:
    columns: dict[str, list[Any]] = {k: [r.get(k) for r in rows] for k in names}
    for name, values in columns.items():
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 and kinds != {int, float}:  # a value of another type: the column as text
            columns[name] = [None if v is None else _text(v, rng) for v in values]
    out = io.BytesIO()
    pl.DataFrame(columns, strict=False).write_parquet(out)
    return out.getvalue()


def write_day(day: LandingDay, folder: Path, seed: int = 0) -> None:
    """Write every file of ``day`` into the landing zone under ``folder``."""
    rng = random.Random(seed)
    for file in day.files:
        target = folder / file.source / DAY_START.date().isoformat() / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        columns = [c.name for c in COLUMNS[file.source]] + ["extra"]
        rng.shuffle(columns)
        rows = [r.values for r in file.records if r.values is not None]
        if file.defect == "empty":
            data = b""
        elif file.defect == "unrelated":
            data = _unrelated(file.fmt)
        elif file.defect == "semicolon":
            data = _csv(file, columns, rng, delimiter=";")
        elif file.fmt == "parquet":
            data = _parquet(rows, [c.name for c in COLUMNS[file.source]], rng)
            data = data[: len(data) // 2] if file.defect == "truncated" else data
        else:
            data = _csv(file, columns, rng) if file.fmt == "csv" else _jsonl(file, rng)
        target.write_bytes(data)


def _unrelated(fmt: str) -> bytes:
    frame = pl.DataFrame({"user": ["u1", "u2"], "score;points": [1, 2]})
    out = io.BytesIO()
    if fmt == "parquet":
        frame.write_parquet(out)
    elif fmt == "csv":
        frame.write_csv(out)
    else:
        frame.write_ndjson(out)
    return out.getvalue()
