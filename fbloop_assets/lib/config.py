"""fbloop's one configuration file: attribution windows, privacy, lookbacks, the loop's parameters.

The file is TOML, found at ``$FBLOOP_CONFIG`` or else ``./fbloop.toml``; every key is optional
and falls back to the default documented in the shipped ``fbloop.toml``. Unknown keys are an
error, so a typo never silently leaves a default in force.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

PRIVACY_MODES = ("aggregated", "pseudonymized", "identifiable")


class ConfigError(ValueError):
    """The configuration file is unreadable or holds a wrong key or value."""


@dataclass(frozen=True)
class AttributionWindows:
    """Days after a recommendation is served during which each outcome type may still arrive."""

    impression: float = 1.0
    engagement: float = 2.0
    click: float = 2.0
    conversion: float = 7.0

    def for_event(self, event_type: str) -> timedelta:
        return timedelta(days=getattr(self, event_type))

    def longest(self) -> timedelta:
        return timedelta(days=max(getattr(self, f.name) for f in fields(self)))


@dataclass(frozen=True)
class PrivacyConfig:
    """How subject-level (audience member) data is treated; option B of the spec by default."""

    mode: str = "pseudonymized"
    consent_flag: str = "consent_analytics"


@dataclass(frozen=True)
class IngestionConfig:
    """How far back a signal or label may refer to a served recommendation."""

    recommendation_lookback_days: int = 14


@dataclass(frozen=True)
class ServingConfig:
    """How `fbloop suggest` draws a slate: Plackett-Luce over ``standardized score / temperature``."""

    temperature: float = 0.4
    slate_size: int = 10


@dataclass(frozen=True)
class PerformanceConfig:
    """The creator's past conversion rate, a feature learned from feedback."""

    window_days: int = 28
    # Clicks of pseudo-evidence pulling a creator's conversion rate towards the catalog's rate.
    prior_clicks: float = 200.0


@dataclass(frozen=True)
class DatasetConfig:
    """Which days a FeedbackDataset version holds and how it is split for evaluation."""

    window_days: int = 7
    # Share of requests (by a hash of the request id) kept out of fitting, for offline evaluation.
    holdout_share: float = 0.3


@dataclass(frozen=True)
class TrainingConfig:
    """How candidate weights are fitted and how far they may move from production."""

    # Share of the fitting weight each kind of evidence carries.
    label_weight: float = 0.5
    conversion_weight: float = 0.3
    click_weight: float = 0.15
    engagement_weight: float = 0.05
    # Inverse-propensity weights are capped at this value (then normalized to mean 1).
    propensity_clip: float = 10.0
    # Inverse L2 regularization strength of the logistic model (scikit-learn's C).
    regularization_c: float = 1.0
    # Largest change of any single weight in one cycle.
    max_step: float = 0.5


@dataclass(frozen=True)
class EvaluationConfig:
    """Offline metrics."""

    # Importance weights (target / logged propensity) are capped at this value in IPS and SNIPS.
    ips_clip: float = 10.0


@dataclass(frozen=True)
class PromotionConfig:
    """Thresholds of the checks that gate a candidate's way to staging."""

    min_records: int = 2000
    min_labeled: int = 100
    # The candidate may be at most this much worse than production (absolute NDCG@5 / relative SNIPS).
    ndcg_tolerance: float = 0.01
    snips_tolerance: float = 0.05


@dataclass(frozen=True)
class CanaryConfig:
    """How staged weights are tried on live traffic before they become production."""

    # Share of suggestion requests served by the canary (0 = staged weights go straight to production).
    share: float = 0.25
    # Days the canary serves before it is compared with production, and at most (then rolled back).
    days: int = 3
    max_days: int = 7
    # Slates each arm needs before a verdict; with fewer, the canary keeps serving.
    min_slates: int = 100
    # Regression: the interval of canary / production - 1 lies below -tolerance; pass: no estimate does.
    tolerance: float = 0.05
    confidence: float = 0.95
    bootstrap_samples: int = 2000


@dataclass(frozen=True)
class TuningConfig:
    """Campaign tuning suggestions: how much evidence a change needs and how far it may go."""

    # Complete serving days (attribution windows closed) behind a suggestion.
    window_days: int = 14
    # A change needs at least this many posts and creators in the segment it acts on.
    min_records: int = 200
    min_creators: int = 5
    # Smallest expected relative improvement of the objective's KPI worth proposing.
    min_effect: float = 0.05
    # Family-wise level of the bootstrap intervals (resampling creators; Bonferroni over the changes
    # tested for a campaign), and the resamples.
    confidence: float = 0.95
    bootstrap_samples: int = 2000
    # No change may leave fewer eligible (and matching) creators than this.
    min_pool_size: int = 50
    # Accepted changes per campaign within 7 days; at the cap the campaign gets no new suggestions.
    max_changes_per_week: int = 2
    max_suggestions_per_campaign: int = 3


@dataclass(frozen=True)
class LabelingConfig:
    """The reviewers' web app (`fbloop serve`): the queue and the session cookie."""

    # Serving days (the latest ones) whose recommendations are offered for labeling.
    queue_days: int = 7
    # Share of recommendations (stable hash) routed to a second reviewer, to measure agreement.
    double_label_share: float = 0.15
    # Items listed on the queue page after the one being labeled.
    queue_size: int = 20
    # A session expires this many hours after sign-in.
    session_hours: float = 12.0
    # Send the session cookie over HTTPS only (set true behind TLS).
    https_only: bool = False


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
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    labeling: LabelingConfig = field(default_factory=LabelingConfig)


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {where}{unknown[0]!r} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        if hasattr(default, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise ConfigError(f"[{where}{name}] must be a table")
            values[name] = _build(type(default), value, f"{where}{name}.")
        elif isinstance(default, float) and type(value) is int:
            values[name] = float(value)
        elif type(value) is not type(default):
            raise ConfigError(f"{where}{name} must be {type(default).__name__}, got {value!r}")
        else:
            values[name] = value
    return cls(**values)


def parse_config(text: str, origin: str = "<config>") -> FbloopConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    config: FbloopConfig = _build(FbloopConfig, raw, "")
    if config.privacy.mode not in PRIVACY_MODES:
        raise ConfigError(
            f"privacy.mode must be one of {', '.join(PRIVACY_MODES)}, got {config.privacy.mode!r}"
        )
    windows = config.attribution_windows_days
    if min(getattr(windows, f.name) for f in fields(windows)) < 0:
        raise ConfigError("attribution windows must be >= 0 days")
    if config.ingestion.recommendation_lookback_days < windows.longest().days:
        raise ConfigError("ingestion.recommendation_lookback_days must cover the longest attribution window")
    for name, value in (
        ("serving.temperature", config.serving.temperature),
        ("serving.slate_size", config.serving.slate_size),
        ("performance.window_days", config.performance.window_days),
        ("dataset.window_days", config.dataset.window_days),
        ("training.propensity_clip", config.training.propensity_clip),
        ("training.regularization_c", config.training.regularization_c),
        ("training.max_step", config.training.max_step),
        ("evaluation.ips_clip", config.evaluation.ips_clip),
    ):
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    canary = config.canary
    if not 0.0 <= canary.share < 1.0:
        raise ConfigError(f"canary.share must be at least 0 and below 1, got {canary.share}")
    if not 0.5 <= canary.confidence < 1.0:
        raise ConfigError(f"canary.confidence must be between 0.5 and 1, got {canary.confidence}")
    if canary.max_days < canary.days:
        raise ConfigError(f"canary.max_days ({canary.max_days}) must be at least canary.days ({canary.days})")
    if canary.days < 1 or canary.min_slates < 1 or canary.bootstrap_samples < 100 or canary.tolerance < 0:
        raise ConfigError(
            "canary.days and canary.min_slates must be >= 1, bootstrap_samples >= 100, tolerance >= 0"
        )
    tuning = config.tuning
    if (
        min(tuning.window_days, tuning.min_records, tuning.min_creators, tuning.max_suggestions_per_campaign)
        < 1
    ):
        raise ConfigError(
            "tuning.window_days, min_records, min_creators and max_suggestions_per_campaign must be >= 1"
        )
    if tuning.max_changes_per_week < 1:
        raise ConfigError("tuning.max_changes_per_week must be >= 1")
    if tuning.min_effect < 0 or tuning.min_pool_size < 0:
        raise ConfigError("tuning.min_effect and tuning.min_pool_size must be >= 0")
    if not 0.5 <= tuning.confidence < 1.0 or tuning.bootstrap_samples < 100:
        raise ConfigError("tuning.confidence must be in [0.5, 1) and tuning.bootstrap_samples >= 100")
    labeling = config.labeling
    if not 0.0 <= labeling.double_label_share <= 1.0:
        raise ConfigError(
            f"labeling.double_label_share must be between 0 and 1, got {labeling.double_label_share}"
        )
    if labeling.queue_days < 1 or labeling.queue_size < 1 or labeling.session_hours <= 0:
        raise ConfigError("labeling.queue_days and labeling.queue_size must be >= 1, session_hours > 0")
    if not 0.0 < config.dataset.holdout_share < 1.0:
        raise ConfigError(
            f"dataset.holdout_share must be between 0 and 1, got {config.dataset.holdout_share}"
        )
    return config


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
    return parse_config(text, str(path))
