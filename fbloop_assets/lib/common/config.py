"""fbloop's one configuration file: attribution windows, privacy, lookbacks, the loop's parameters.

The file is TOML, found at ``$FBLOOP_CONFIG`` or else ``./fbloop.toml``; every key is optional
and falls back to the default documented in the shipped ``fbloop.toml``. Unknown keys are an
error, so a typo never silently leaves a default in force. Every value is checked against what
its key allows (declared next to the key: `config_keys`, the sections in `config_stages` and
`config_guards`), then the rules that join keys are checked (a warn threshold on the safe side
of its fail threshold, a lookback that covers the longest attribution window, ...). Every
refusal is a `ConfigError` of one line that names the dotted key and the allowed values.

This module is where the rest of fbloop imports the configuration from: it re-exports the
sections, so `from fbloop_assets.lib.common.config import TuningConfig` keeps working.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fbloop_assets.lib.common.config_guards import (
    AnomalyGuard,
    CompletenessGuard,
    DriftGuard,
    EvidenceGuard,
    ExpectationsGuard,
    ExposureGuard,
    GuardsConfig,
    LabelQualityGuard,
    RegressionGuard,
    StepGuard,
)
from fbloop_assets.lib.common.config_keys import (
    SPEC,
    ConfigError,
    check_value,
    default_of,
    keys,
    offending,
    shown,
)
from fbloop_assets.lib.common.config_stages import (
    PRIVACY_MODES,
    AttributionWindows,
    CanaryConfig,
    DagsterConfig,
    DatasetConfig,
    EvaluationConfig,
    ExportConfig,
    IngestionConfig,
    LabelingConfig,
    PerformanceConfig,
    PrivacyConfig,
    ServingConfig,
    TrainingConfig,
    TuningConfig,
)

__all__ = [
    "PRIVACY_MODES",
    "AnomalyGuard",
    "AttributionWindows",
    "CanaryConfig",
    "CompletenessGuard",
    "ConfigError",
    "DagsterConfig",
    "DatasetConfig",
    "DriftGuard",
    "EvaluationConfig",
    "EvidenceGuard",
    "ExpectationsGuard",
    "ExportConfig",
    "ExposureGuard",
    "FbloopConfig",
    "GuardsConfig",
    "IngestionConfig",
    "LabelQualityGuard",
    "LabelingConfig",
    "PerformanceConfig",
    "PrivacyConfig",
    "RegressionGuard",
    "ServingConfig",
    "StepGuard",
    "TrainingConfig",
    "TuningConfig",
    "config_path",
    "keys",
    "load_config",
    "parse_config",
    "validate",
    "value_at",
]


@dataclass(frozen=True)
class FbloopConfig:
    attribution_windows_days: AttributionWindows = field(default_factory=AttributionWindows)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    ingestion: IngestionConfig = field(default_factory=IngestionConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    guards: GuardsConfig = field(default_factory=GuardsConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    labeling: LabelingConfig = field(default_factory=LabelingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    dagster: DagsterConfig = field(default_factory=DagsterConfig)


# (lower, upper): the first key's value must not exceed the second's.
ORDERED_KEYS = (
    ("guards.label_quality.alpha_fail", "guards.label_quality.alpha_warn"),
    ("guards.anomalies.z_warn", "guards.anomalies.z_fail"),
    ("guards.drift.psi_warn", "guards.drift.psi_fail"),
    ("canary.days", "canary.max_days"),
)
TRAINING_SHARES = ("label_weight", "conversion_weight", "click_weight", "engagement_weight")


def value_at(config: Any, dotted: str) -> Any:
    return functools.reduce(getattr, dotted.split("."), config)


def _build(section: type, raw: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(section)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {where + unknown[0]!r} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = default_of(known[name])
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{name} must be a table ([{where}{name}]), got {offending(value)}")
            values[name] = _build(type(default), value, f"{where}{name}.")
        else:
            values[name] = check_value(where + name, known[name], default, value)
    return section(**values)


def _cross_key_refusals(config: FbloopConfig) -> Iterator[str]:
    windows = config.attribution_windows_days
    longest = max(fields(windows), key=lambda f: getattr(windows, f.name)).name
    lookback = config.ingestion.recommendation_lookback_days
    if lookback < windows.longest().days:
        yield (
            "ingestion.recommendation_lookback_days must cover the longest attribution window: at least "
            f"{windows.longest().days} (attribution_windows_days.{longest}), got {lookback}"
        )
    for lower, upper in ORDERED_KEYS:
        low, high = value_at(config, lower), value_at(config, upper)
        if low > high:
            yield f"{lower} must be at most {upper} ({shown(high)}), got {shown(low)}"
    if not any(getattr(config.training, name) > 0 for name in TRAINING_SHARES):
        names = ", ".join(f"training.{name}" for name in TRAINING_SHARES)
        yield f"at least one of {names} must be positive, got 0 for all of them"
    start = config.dagster.partitions_start
    try:
        date.fromisoformat(start)
    except ValueError:
        yield f"dagster.partitions_start must be a date YYYY-MM-DD, got {start!r}"


def validate(config: FbloopConfig) -> FbloopConfig:
    """``config`` if the rules that join keys hold, else a `ConfigError` naming the keys."""
    for refusal in _cross_key_refusals(config):
        raise ConfigError(refusal)
    return config


_TABLE_LINE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")
_LONG_INTEGER_LINE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*[+-]?[0-9_]{4000,}\s*(#.*)?$")


DIGITS = "4,300"  # Python's default limit on converting a string to an int


def _too_long_integer(text: str, origin: str) -> ConfigError:
    """tomllib raises a bare ValueError for an integer of more than 4,300 digits: find its key."""
    table, allowed = "", {dotted: f.metadata.get(SPEC) for dotted, f, _ in keys(FbloopConfig)}
    for line in text.splitlines():
        if found := _TABLE_LINE.match(line):
            table = found.group(1).replace(" ", "") + "."
        elif found := _LONG_INTEGER_LINE.match(line):
            dotted = table + found.group(1)
            spec = allowed.get(dotted)
            wanted = f"must be {spec.describe()}" if spec is not None else "is not a numeric key"
            return ConfigError(f"{dotted} {wanted}, got an integer of more than {DIGITS} digits")
    return ConfigError(f"{origin}: not valid TOML: an integer of more than {DIGITS} digits")


def parse_config(text: str, origin: str = "<config>") -> FbloopConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    except ValueError as exc:  # Python's limit on integer digits, raised inside tomllib
        raise _too_long_integer(text, origin) from exc
    config: FbloopConfig = _build(FbloopConfig, raw, "")
    return validate(config)


def config_path() -> Path | None:
    explicit = os.environ.get("FBLOOP_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("fbloop.toml")
    return local if local.exists() else None


def load_config(path: Path | None = None) -> FbloopConfig:
    """Read the configuration file (``$FBLOOP_CONFIG``, else ``./fbloop.toml``), or the defaults."""
    path = path or config_path()
    if path is None:
        return FbloopConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 (byte {exc.start})") from exc
    return parse_config(text, str(path))
