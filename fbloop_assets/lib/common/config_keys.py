"""What a configuration key is (type, default, allowed values) and how one value of it is checked.

A key is a field of a frozen dataclass section; its default comes from one of the declarations
below, so its allowed values sit on the same line as the key, in one place:

    temperature: float = number(0.4, gt=0, le=100)     # a float in (0, 100]
    slate_size: int = number(10, ge=1, le=1000)        # an integer in [1, 1000]
    mode: str = choice("pseudonymized", PRIVACY_MODES)
    consent_flag: str = text("consent_analytics")      # any non-empty string
    enabled: bool = True                               # booleans need no declaration

**Adding a key** is that one line in its section (`config_stages.py`, `config_guards.py`), plus
the key's line in the shipped `fbloop.toml` and its row in the README's configuration table (a
test holds all three together). The integer or float type comes from the default (`1` is an
integer key, `1.0` a float key). A number takes exactly one lower bound (``ge`` or ``gt``) and
one upper bound (``le`` or ``lt``): finite bounds refuse infinities and values that would
overflow downstream (``timedelta``, numpy), and the declaration itself refuses a default outside
its range. Rules that join two keys (warn below fail, ...) live in `config.py`.

Every refusal is a `ConfigError` with one line that names the dotted key and what it allows:
``guards.regression.snips_tolerance must be a number in [0, 1], got nan``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from datetime import date, datetime, time
from typing import Any, TypeVar

SPEC = "fbloop.config"  # the field metadata entry that holds a key's declaration
N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """The configuration file is unreadable or holds a wrong key or value."""


def shown(value: float) -> str:
    """A bound or a value as a reader writes it: 0.5, 200, 1e9 (not 1000000000.0)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value == int(value):
        short = f"{value:g}".replace("e+0", "e").replace("e+", "e")
        return short if "e" in short and float(short) == value else str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Range:
    """An interval with finite ends; ``*_open`` excludes that end."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{shown(self.low)}, {shown(self.high)}{right}"


@dataclass(frozen=True)
class Number:
    kind: type  # int or float
    range: Range

    def describe(self) -> str:
        return f"{'an integer' if self.kind is int else 'a number'} in {self.range}"


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def describe(self) -> str:
        return f"one of {', '.join(self.options)}"


@dataclass(frozen=True)
class Text:
    optional: bool = False  # the empty string means "not set"

    def describe(self) -> str:
        return "a string, empty for none" if self.optional else "a non-empty string"


def number(
    default: N,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> N:
    """A numeric key: ``default`` and its range, one lower and one upper bound."""
    if (ge is None) == (gt is None) or (le is None) == (lt is None):
        raise TypeError("a numeric key needs exactly one lower bound (ge or gt) and one upper (le or lt)")
    low, high = ge if gt is None else gt, le if lt is None else lt
    assert low is not None and high is not None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise TypeError("a numeric key's bounds must be finite")
    spec = Number(type(default), Range(low, high, gt is not None, lt is not None))
    if isinstance(default, bool) or default not in spec.range:
        raise TypeError(f"default {default!r} is not {spec.describe()}")
    return field(default=default, metadata={SPEC: spec})


def choice(default: str, options: tuple[str, ...]) -> str:
    """A key that takes one of ``options``."""
    if default not in options:
        raise TypeError(f"default {default!r} is not one of {options}")
    return field(default=default, metadata={SPEC: Choice(options)})


def text(default: str) -> str:
    """A key that takes any non-empty string (a column name, ...)."""
    return field(default=default, metadata={SPEC: Text()})


def optional_text(default: str = "") -> str:
    """A key that takes any string; the empty string leaves it unset (a group name, ...)."""
    return field(default=default, metadata={SPEC: Text(optional=True)})


def default_of(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    assert f.default_factory is not MISSING
    return f.default_factory()


def keys(section: type, prefix: str = "") -> Iterator[tuple[str, Field[Any], Any]]:
    """Every leaf key of ``section`` and its subsections: (dotted name, field, default)."""
    for f in fields(section):
        default = default_of(f)
        if is_dataclass(default):
            yield from keys(type(default), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, default


def offending(value: Any) -> str:
    """The offending value in a message: short, on one line, never a 4,000-digit number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 10**20:
        # str() of an int beyond 4,300 digits raises; tomllib refuses those before us anyway
        digits = str(len(str(abs(value)))) if value.bit_length() < 14_000 else "thousands of"
        return f"an integer of {digits} digits"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return f"the date/time {value.isoformat()}"
    written = repr(value)
    return written if len(written) <= 40 else written[:37] + "..."


def check_value(dotted: str, f: Field[Any], default: Any, value: Any) -> Any:
    """``value`` for key ``dotted`` as the section stores it (an int given for a float key becomes a
    float), or a `ConfigError` naming the key and what it allows."""
    spec = f.metadata.get(SPEC)
    if spec is None:  # an undeclared key: only booleans are (test_config walks every key)
        if type(value) is not type(default):
            raise ConfigError(f"{dotted} must be true or false, got {offending(value)}")
        return value
    refused = ConfigError(f"{dotted} must be {spec.describe()}, got {offending(value)}")
    if isinstance(spec, Number):
        allowed = (int, float) if spec.kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise refused
        if (isinstance(value, float) and not math.isfinite(value)) or value not in spec.range:
            raise refused
        return float(value) if spec.kind is float else value
    if isinstance(spec, Choice):
        if not isinstance(value, str) or value not in spec.options:
            raise refused
        return value
    if not isinstance(value, str) or not (value.strip() or (spec.optional and not value)):
        raise refused
    return value
