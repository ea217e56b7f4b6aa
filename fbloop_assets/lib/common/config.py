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
MAX_CLOCK_SKEW_MINUTES = 1440.0  # a day: more is not clock skew but a wrong date


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
    """How far back a signal or label may refer to a served recommendation, and how early."""

    recommendation_lookback_days: int = 14
    # An outcome or label timestamped up to this many minutes before its recommendation was served
    # is clock skew between systems (its event_at becomes served_at); earlier, it is quarantined.
    clock_skew_tolerance_minutes: float = 5.0


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
class EvidenceGuard:
    """Enough records to judge a candidate, overall and per campaign segment (objective)."""

    min_records: int = 2000
    # Held-out labeled records the offline metrics stand on.
    min_labeled: int = 100
    # A campaign segment (objective) with fewer records is reported (WARN): its share of the
    # candidate's evidence is too thin to speak for it.
    min_segment_records: int = 200


@dataclass(frozen=True)
class CompletenessGuard:
    """Only closed attribution windows; missing partitions are reported, never skipped silently."""

    # Share of the window's outcomes that arrived after their attribution window closed (excluded
    # from the dataset) above which the check warns: outcomes are arriving late.
    late_share_warn: float = 0.05


@dataclass(frozen=True)
class LabelQualityGuard:
    """Inter-reviewer agreement on items labeled twice, and one reviewer's sudden flood."""

    # Krippendorff's alpha (nominal) on the window's items labeled by two or more reviewers.
    # Alpha also falls when most recommendations deserve the same label (little variation to agree
    # on), as the loop gets better: the floors are low on purpose.
    alpha_fail: float = 0.05
    alpha_warn: float = 0.15
    # Items labeled twice needed before alpha is judged (fewer: WARN, not measurable).
    min_double_labeled: int = 30
    # Days before the judged day whose labels count for agreement and for a reviewer's usual volume.
    trailing_days: int = 7
    # A reviewer floods a day when they give more than flood_share of the day's labels, at least
    # flood_min_labels of them and more than flood_jump times their median daily count; or when
    # their agreement with peers on shared items lies more than agreement_gap below the other
    # reviewers' (with at least min_shared items).
    flood_share: float = 0.4
    flood_min_labels: int = 50
    flood_jump: float = 3.0
    agreement_gap: float = 0.35
    min_shared: int = 10


@dataclass(frozen=True)
class AnomalyGuard:
    """Engagement far outside a creator's or campaign's trailing window without matching conversions."""

    trailing_days: int = 14
    # Robust z-score of the day's engagements per impression: (rate - median) / spread over the
    # trailing days, the spread at least relative_spread times the median (a creator's rate
    # varies up to about 3x from day to day with the campaigns it serves).
    z_fail: float = 8.0
    z_warn: float = 5.0
    relative_spread: float = 0.5
    # Below this many engagements on the day nothing is judged (small numbers spike naturally).
    min_engagements: int = 100
    # "Without matching conversions": the day's conversions per engagement below this share of
    # the trailing rate. Bought engagement brings no buyers.
    conversion_ratio: float = 0.5


@dataclass(frozen=True)
class DriftGuard:
    """Per-feature drift of a dataset version against the previous one (population stability index)."""

    bins: int = 10
    # PSI thresholds above the sampling noise expected for the two sample sizes, (bins - 1) *
    # (1/n_previous + 1/n_current): small days do not raise false alarms.
    psi_warn: float = 0.1
    psi_fail: float = 0.25


@dataclass(frozen=True)
class StepGuard:
    """How far a candidate moves from production (largest change of any weight)."""

    # WARN when the largest step exceeds this share of training.max_step; ERROR beyond max_step.
    warn_share: float = 0.9


@dataclass(frozen=True)
class RegressionGuard:
    """Candidate against production on the held-out requests."""

    # NDCG@5 may be at most this much lower (absolute).
    ndcg_tolerance: float = 0.01
    # The lower bound of the bootstrap interval of SNIPS conversion yield (candidate / production
    # - 1) may be at most this far below zero.
    snips_tolerance: float = 0.05
    confidence: float = 0.9
    bootstrap_samples: int = 500


@dataclass(frozen=True)
class ExposureGuard:
    """The candidate must not concentrate exposure beyond production's (feedback-loop amplification)."""

    # Tolerated change (absolute): Gini up, catalog coverage down, share of never-shown creators down.
    gini_tolerance: float = 0.02
    coverage_tolerance: float = 0.02
    new_creator_tolerance: float = 0.02


@dataclass(frozen=True)
class ExpectationsGuard:
    """The Great Expectations suite on `normalized_feedback` (see `lib.expectations`)."""

    # Rows validated per day: a stable hash sample of a larger day (pandas would not hold 10M rows
    # in reasonable time); feedback_id uniqueness is checked exactly on every row regardless.
    sample_rows: int = 200_000


@dataclass(frozen=True)
class GuardsConfig:
    """The asset checks that throttle the loop (the `guards` modules of the feedback, dataset and
    weights stages)."""

    # true: a failed guard is an ERROR that blocks promotion, and suspicious rows are held back.
    # false: every guard only reports (WARN) and nothing is held back (the unguarded loop).
    enabled: bool = True
    evidence: EvidenceGuard = field(default_factory=EvidenceGuard)
    completeness: CompletenessGuard = field(default_factory=CompletenessGuard)
    label_quality: LabelQualityGuard = field(default_factory=LabelQualityGuard)
    anomalies: AnomalyGuard = field(default_factory=AnomalyGuard)
    drift: DriftGuard = field(default_factory=DriftGuard)
    step: StepGuard = field(default_factory=StepGuard)
    regression: RegressionGuard = field(default_factory=RegressionGuard)
    exposure: ExposureGuard = field(default_factory=ExposureGuard)
    expectations: ExpectationsGuard = field(default_factory=ExpectationsGuard)


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
    guards: GuardsConfig = field(default_factory=GuardsConfig)
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
    skew = config.ingestion.clock_skew_tolerance_minutes
    if not 0.0 <= skew <= MAX_CLOCK_SKEW_MINUTES:  # also refuses NaN
        raise ConfigError(
            f"ingestion.clock_skew_tolerance_minutes must be in [0, {MAX_CLOCK_SKEW_MINUTES:g}], got {skew}"
        )
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
    _check_guards(config.guards)
    if not 0.0 < config.dataset.holdout_share < 1.0:
        raise ConfigError(
            f"dataset.holdout_share must be between 0 and 1, got {config.dataset.holdout_share}"
        )
    return config


def _check_guards(guards: GuardsConfig) -> None:
    quality, anomalies = guards.label_quality, guards.anomalies
    drift, regression = guards.drift, guards.regression
    if quality.alpha_fail > quality.alpha_warn:
        raise ConfigError("guards.label_quality.alpha_fail must not exceed alpha_warn")
    if anomalies.z_warn > anomalies.z_fail or drift.psi_warn > drift.psi_fail:
        raise ConfigError("guards: a warn threshold must not exceed its fail threshold (z, psi)")
    if not 0.0 < quality.flood_share <= 1.0 or not 0.0 < guards.step.warn_share <= 1.0:
        raise ConfigError("guards.label_quality.flood_share and guards.step.warn_share must be in (0, 1]")
    if anomalies.trailing_days < 3 or quality.trailing_days < 1 or drift.bins < 2:
        raise ConfigError(
            "guards.anomalies.trailing_days must be >= 3, guards.label_quality.trailing_days >= 1"
            " and guards.drift.bins >= 2"
        )
    if not 0.5 <= regression.confidence < 1.0 or regression.bootstrap_samples < 100:
        raise ConfigError("guards.regression.confidence must be in [0.5, 1) and bootstrap_samples >= 100")
    if guards.expectations.sample_rows < 1:
        raise ConfigError("guards.expectations.sample_rows must be >= 1")


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
