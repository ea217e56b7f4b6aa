"""The README is the user contract: every column, reason code, config key and command is in it.

The landing contract and its reasons were once lost in a merge; these tests read the code (the
landing columns, `Reason`, the feedback schema, the configuration dataclasses, the argparse
parser) and fail when the README does not document what the code does, so the docs cannot drift
again. Tables are read by their first cell; a config row may list sibling keys after the first
full name as `.name` (`guards.drift.bins`, `.psi_warn`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path

import polars as pl
import pytest

from fbloop_assets.cli import build_parser
from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.feedback.normalize import FEEDBACK_SCHEMA
from fbloop_assets.lib.ingest.landing import COLUMNS, SOURCES, UTC_DATETIME, Reason

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
TYPE_NAMES = {
    pl.String(): "text",
    pl.Int64(): "integer",
    pl.Float64(): "number",
    pl.Boolean(): "boolean",
    pl.Date(): "date",
    UTC_DATETIME: "timestamp",
}


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (header and separator rows included)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
            rows.append([c.strip() for c in cells])
    return rows


def names_in(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def source_table(source: str) -> list[list[str]]:
    """The rows of the column table that follows the paragraph opening with `source`."""
    text = section("Landing zone")
    start = text.index(f"\n`{source}` (")
    table = re.search(r"\n(\|.*?)\n\n", text[start:], re.S)
    assert table, f"no column table after `{source}`"
    return table_rows(table.group(1))[2:]


@pytest.mark.parametrize("source", SOURCES)
def test_every_landing_column_is_documented_with_its_type_and_whether_required(source: str) -> None:
    documented = {name: (row[1], row[2]) for row in source_table(source) for name in names_in(row[0])[:1]}
    expected = {c.name: (TYPE_NAMES[c.dtype], "yes" if c.required else "no") for c in COLUMNS[source]}
    assert documented == expected


def test_every_quarantine_reason_is_in_the_reason_table() -> None:
    rows = table_rows(section("Quarantine"))
    documented = {name for row in rows if len(row) == 3 for name in names_in(row[0])[:1]}
    assert documented == {str(r) for r in Reason}


def test_every_quarantine_column_is_documented() -> None:
    from fbloop_assets.lib.ingest.rejects import REJECT_SCHEMA

    rows = table_rows(section("Quarantine"))
    documented = {n for row in rows if len(row) == 2 for n in names_in(row[0])}
    assert documented == set(REJECT_SCHEMA)


def test_every_normalized_feedback_column_is_documented() -> None:
    documented = {n for row in table_rows(section("Normalized feedback")) for n in names_in(row[0])}
    assert documented == set(FEEDBACK_SCHEMA)


def config_keys(config: object, prefix: str = "") -> Iterator[str]:
    for f in fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if is_dataclass(value):
            yield from config_keys(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def documented_config_keys() -> set[str]:
    keys: set[str] = set()
    for row in table_rows(section("Configuration")):
        parent = ""
        for name in names_in(row[0]):
            if name.startswith(".") and parent:
                keys.add(parent + name)
            elif "." in name:
                keys.add(name)
                parent = name.rsplit(".", 1)[0]
    return keys


def test_every_config_key_is_in_the_configuration_table() -> None:
    keys = set(config_keys(FbloopConfig()))
    assert "guards.drift.psi_fail" in keys and "ingestion.clock_skew_tolerance_minutes" in keys
    assert sorted(keys - documented_config_keys()) == []


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple, list]]:
    """Every command path the parser accepts and its long options (groups only through their leaves)."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subcommands:
        for name, sub in action.choices.items():
            yield from commands(sub, (*path, name))
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    if path and (options or not subcommands):
        yield path, options


def documented_commands() -> list[tuple[list[set[str]], str]]:
    """(the words of each `fbloop ...` usage in the Commands table, alternatives split; the usage)."""
    usages = []
    for row in table_rows(section("Commands")):
        for usage in names_in(row[0]):
            if not usage.startswith("fbloop "):
                continue
            words = []
            for word in usage.split()[1:]:
                if word.startswith(("-", "[")) or word.isupper():
                    break
                words.append(set(word.replace("\\|", "|").split("|")))
            usages.append((words, usage))
    return usages


def test_every_command_and_its_options_are_in_the_commands_table() -> None:
    usages = documented_commands()
    missing = []
    for path, options in commands(build_parser()):
        found = [
            u for words, u in usages if len(words) == len(path) and all(map(set.__contains__, words, path))
        ]
        if not found:
            missing.append(f"fbloop {' '.join(path)}")
        missing += [f"fbloop {' '.join(path)} {o}" for o in options if not any(o in u for u in found)]
    assert missing == []
