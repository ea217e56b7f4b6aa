"""The configuration sections of the loop's stages (all but the guards, in `config_guards.py`).

Each key declares its default and allowed values on its own line (`config_keys`); the README's
configuration table and the shipped `fbloop.toml` say what each one means.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta

from fbloop_assets.lib.common.config_keys import choice, number, optional_text, text

PRIVACY_MODES = ("aggregated", "pseudonymized", "identifiable")
# What the recommendations' ``propensity`` holds: P(pick | ranks above) or P(creator at this rank).
PROPENSITY_KINDS = ("conditional", "marginal")


@dataclass(frozen=True)
class AttributionWindows:
    """Days after a recommendation is served during which each outcome type may still arrive."""

    impression: float = number(1.0, ge=0, le=365)
    engagement: float = number(2.0, ge=0, le=365)
    click: float = number(2.0, ge=0, le=365)
    conversion: float = number(7.0, ge=0, le=365)

    def for_event(self, event_type: str) -> timedelta:
        return timedelta(days=getattr(self, event_type))

    def longest(self) -> timedelta:
        return timedelta(days=max(getattr(self, f.name) for f in fields(self)))


@dataclass(frozen=True)
class PrivacyConfig:
    """How subject-level (audience member) data is treated; option B of the spec by default."""

    mode: str = choice("pseudonymized", PRIVACY_MODES)
    consent_flag: str = text("consent_analytics")


@dataclass(frozen=True)
class ExportConfig:
    """Who may read training exports: files 0640 in a 0750 folder, owned by ``group`` when set."""

    group: str = optional_text()


@dataclass(frozen=True)
class IngestionConfig:
    """How far back a signal or label may refer to a served recommendation, and how much clock skew."""

    recommendation_lookback_days: int = number(14, ge=1, le=365)
    # An outcome or label timestamped up to this many minutes before its recommendation was served
    # is clock skew between systems (its event_at becomes served_at); earlier, it is quarantined.
    clock_skew_tolerance_minutes: float = number(5.0, ge=0, le=1440)
    # What the recommendations' propensity column holds: conditional (fbloop's own Plackett-Luce
    # logs: the pick given the ranks above) or marginal (the creator at that rank, as other
    # recommenders such as the Open Bandit Dataset log it).
    propensity_kind: str = choice("conditional", PROPENSITY_KINDS)


@dataclass(frozen=True)
class ServingConfig:
    """How `fbloop suggest` draws a slate: Plackett-Luce over ``standardized score / temperature``."""

    temperature: float = number(0.4, gt=0, le=100)
    slate_size: int = number(10, ge=1, le=1000)


@dataclass(frozen=True)
class PerformanceConfig:
    """The creator's past conversion rate, a feature learned from feedback."""

    window_days: int = number(28, ge=1, le=365)
    # Clicks of pseudo-evidence pulling a creator's conversion rate towards the catalog's rate
    # (positive: a creator without clicks would otherwise divide zero by zero).
    prior_clicks: float = number(200.0, gt=0, le=1e6)


@dataclass(frozen=True)
class DatasetConfig:
    """Which days a FeedbackDataset version holds and how it is split for evaluation."""

    window_days: int = number(7, ge=1, le=365)
    # Share of requests (by a hash of the request id) kept out of fitting, for offline evaluation.
    holdout_share: float = number(0.3, gt=0, lt=1)


@dataclass(frozen=True)
class TrainingConfig:
    """How candidate weights are fitted and how far they may move from production."""

    # Share of the fitting weight each kind of evidence carries (at least one positive).
    label_weight: float = number(0.5, ge=0, le=1)
    conversion_weight: float = number(0.3, ge=0, le=1)
    click_weight: float = number(0.15, ge=0, le=1)
    engagement_weight: float = number(0.05, ge=0, le=1)
    # Inverse-propensity weights are capped at this value (then normalized to mean 1).
    propensity_clip: float = number(10.0, gt=0, le=1e6)
    # Inverse L2 regularization strength of the logistic model (scikit-learn's C).
    regularization_c: float = number(1.0, gt=0, le=1e6)
    # Largest change of any single weight in one cycle.
    max_step: float = number(0.5, gt=0, le=100)


@dataclass(frozen=True)
class EvaluationConfig:
    """Offline metrics."""

    # Importance weights (target / logged propensity) are capped at this value in IPS and SNIPS.
    ips_clip: float = number(10.0, gt=0, le=1e6)
    # Sampled slates per pool for Plackett-Luce marginals too many to enumerate (seeded).
    marginal_samples: int = number(1000, ge=100, le=1e6)


@dataclass(frozen=True)
class ObjectiveConfig:
    """What defines a suggestion's value, for evaluation and the gate: weights per outcome kind.

    The gate compares the SNIPS objective yield, Σ weight × outcomes per 1,000 impressions over
    clicks, conversions and engagements, and NDCG@5 on labels only when ``label_weight`` > 0 (the
    evidence guard then also needs labeled records).
    """

    click_weight: float = number(0.0, ge=0, le=1000)
    conversion_weight: float = number(1.0, ge=0, le=1000)
    engagement_weight: float = number(0.0, ge=0, le=1000)
    label_weight: float = number(1.0, ge=0, le=1000)

    @property
    def uses_labels(self) -> bool:
        return self.label_weight > 0

    def outcome_weights(self) -> dict[str, float]:
        """Weight per outcome column of the examples."""
        return {
            "clicks": self.click_weight,
            "conversions": self.conversion_weight,
            "engagements": self.engagement_weight,
        }


@dataclass(frozen=True)
class CanaryConfig:
    """How staged weights are tried on live traffic before they become production."""

    # Share of suggestion requests served by the canary (0 = staged weights go straight to production).
    share: float = number(0.25, ge=0, lt=1)
    # Days the canary serves before it is compared with production, and at most (then rolled back).
    days: int = number(3, ge=1, le=365)
    max_days: int = number(7, ge=1, le=365)
    # Slates each arm needs before a verdict; with fewer, the canary keeps serving.
    min_slates: int = number(100, ge=1, le=1e9)
    # Regression: the interval of canary / production - 1 lies below -tolerance; pass: no estimate does.
    tolerance: float = number(0.05, ge=0, le=1)
    confidence: float = number(0.95, ge=0.5, lt=1)
    bootstrap_samples: int = number(2000, ge=100, le=1e5)


@dataclass(frozen=True)
class TuningConfig:
    """Campaign tuning suggestions: how much evidence a change needs and how far it may go."""

    # Complete serving days (attribution windows closed) behind a suggestion.
    window_days: int = number(14, ge=1, le=365)
    # A change needs at least this many posts and creators in the segment it acts on.
    min_records: int = number(200, ge=1, le=1e9)
    min_creators: int = number(5, ge=1, le=1e9)
    # Smallest expected relative improvement of the objective's KPI worth proposing.
    min_effect: float = number(0.05, ge=0, le=10)
    # Family-wise level of the bootstrap intervals (resampling creators; Bonferroni over the changes
    # tested for a campaign), and the resamples.
    confidence: float = number(0.95, ge=0.5, lt=1)
    bootstrap_samples: int = number(2000, ge=100, le=1e5)
    # No change may leave fewer eligible (and matching) creators than this.
    min_pool_size: int = number(50, ge=0, le=1e9)
    # Accepted changes per campaign within 7 days; at the cap the campaign gets no new suggestions.
    max_changes_per_week: int = number(2, ge=1, le=1000)
    max_suggestions_per_campaign: int = number(3, ge=1, le=1000)


@dataclass(frozen=True)
class LabelingConfig:
    """The reviewers' web app (`fbloop serve`): the queue, sessions and the sign-in throttle."""

    # Serving days (the latest ones) whose recommendations are offered for labeling.
    queue_days: int = number(7, ge=1, le=365)
    # Share of recommendations (stable hash) routed to a second reviewer, to measure agreement.
    double_label_share: float = number(0.15, ge=0, le=1)
    # Items listed on the queue page after the one being labeled.
    queue_size: int = number(20, ge=1, le=1000)
    # A session expires this many hours after sign-in (at most a year).
    session_hours: float = number(12.0, gt=0, le=8760)
    # Send the session cookie over HTTPS only (set true behind TLS).
    https_only: bool = False
    # Let reviewers (not only analysts and admins) read the audit pages under /audit.
    reviewers_read_audits: bool = False
    # Failed sign-ins of the last this many minutes count towards the throttle.
    sign_in_window_minutes: int = number(15, ge=1, le=1440)
    # Failures per account name, and per client address, within the window after which further
    # attempts are refused (429) without checking the password.
    sign_in_failures_per_account: int = number(5, ge=1, le=1000)
    sign_in_failures_per_client: int = number(20, ge=1, le=100_000)
    # Password checks at once (Argon2id takes 64 MiB each); further attempts wait their turn.
    password_checks_at_once: int = number(2, ge=1, le=64)


EXECUTORS = ("in_process", "multiprocess", "celery")


@dataclass(frozen=True)
class DagsterConfig:
    """How the Dagster code location is built; read when it loads (restart `dagster dev` to apply)."""

    # The first daily partition, YYYY-MM-DD (checked in config.py): the UI lists days from here on.
    partitions_start: str = text("2026-01-01")
    # in_process: a run executes its steps one after another in one process (the embedded default:
    # no subprocess per step); multiprocess: one subprocess per step, for a PostgreSQL instance;
    # celery: every step a task on a dagster-celery worker (`fbloop worker`, deploy/celery/).
    # $FBLOOP_EXECUTOR, when set, wins (a deployment switches engines by its environment).
    executor: str = choice("in_process", EXECUTORS)
    # The day's normalization in this many shards, each its own step (on any worker): rows split by
    # a hash of their recommendation id, so a signal or label meets its recommendation in its shard.
    # 1: one step, `feedback_and_quarantine`, as always.
    feedback_shards: int = number(1, ge=1, le=64)
