"""The configuration of the guards: the asset checks that throttle the loop (`[guards.*]`).

Each key declares its default and allowed values on its own line (`config_keys`); that a warn
threshold lies on the safe side of its fail threshold is checked in `config.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fbloop_assets.lib.common.config_keys import number


@dataclass(frozen=True)
class EvidenceGuard:
    """Enough records to judge a candidate, overall and per campaign segment (objective)."""

    min_records: int = number(2000, ge=0, le=1e9)
    # Held-out labeled records the offline metrics stand on.
    min_labeled: int = number(100, ge=0, le=1e9)
    # A campaign segment (objective) with fewer records is reported (WARN): its share of the
    # candidate's evidence is too thin to speak for it.
    min_segment_records: int = number(200, ge=0, le=1e9)


@dataclass(frozen=True)
class CompletenessGuard:
    """Only closed attribution windows; missing partitions are reported, never skipped silently."""

    # Share of the window's outcomes that arrived after their attribution window closed (excluded
    # from the dataset) above which the check warns: outcomes are arriving late.
    late_share_warn: float = number(0.05, ge=0, le=1)


@dataclass(frozen=True)
class LabelQualityGuard:
    """Inter-reviewer agreement on items labeled twice, and one reviewer's sudden flood."""

    # Krippendorff's alpha (nominal) on the window's items labeled by two or more reviewers. FAIL
    # when its one-sided upper bound at `confidence` (a bootstrap over items, `bootstrap_samples`)
    # lies below alpha_fail; WARN when alpha itself is below alpha_warn. On a few dozen items
    # alpha swings by ±0.3 from day to day, and it falls as most recommendations deserve the same
    # label (little variation to agree on) as the loop gets better: a point estimate alone
    # blocked good days.
    alpha_fail: float = number(0.2, ge=-1, le=1)
    alpha_warn: float = number(0.3, ge=-1, le=1)
    confidence: float = number(0.95, gt=0.5, lt=1)
    bootstrap_samples: int = number(1000, ge=100, le=1e6)
    # Items labeled twice needed before alpha is judged (fewer: WARN, not measurable).
    min_double_labeled: int = number(30, ge=0, le=1e9)
    # Days before the judged day whose labels count for agreement and for a reviewer's usual volume.
    trailing_days: int = number(7, ge=1, le=365)
    # A reviewer floods a day when they give more than flood_share of the day's labels, at least
    # flood_min_labels of them and more than flood_jump times their median daily count; or when
    # their agreement with peers on shared items lies more than agreement_gap below the other
    # reviewers' (with at least min_shared items).
    flood_share: float = number(0.4, gt=0, le=1)
    flood_min_labels: int = number(50, ge=0, le=1e9)
    flood_jump: float = number(3.0, ge=0, le=1000)
    agreement_gap: float = number(0.35, ge=0, le=1)
    min_shared: int = number(10, ge=1, le=1e9)


@dataclass(frozen=True)
class AnomalyGuard:
    """Engagement far outside a creator's or campaign's trailing window without matching conversions."""

    trailing_days: int = number(14, ge=3, le=365)
    # Robust z-score of the day's engagements per impression: (rate - median) / spread over the
    # trailing days, the spread at least relative_spread times the median (a creator's rate
    # varies up to about 3x from day to day with the campaigns it serves).
    z_fail: float = number(8.0, gt=0, le=1000)
    z_warn: float = number(5.0, gt=0, le=1000)
    relative_spread: float = number(0.5, ge=0, le=100)
    # Below this many engagements on the day nothing is judged (small numbers spike naturally).
    min_engagements: int = number(100, ge=0, le=1e9)
    # "Without matching conversions": the day's conversions per engagement below this share of
    # the trailing rate. Bought engagement brings no buyers.
    conversion_ratio: float = number(0.5, ge=0, le=1)


@dataclass(frozen=True)
class DriftGuard:
    """Per-feature drift of a dataset version against the previous one (population stability index)."""

    bins: int = number(10, ge=2, le=1000)
    # PSI thresholds above the sampling noise expected for the two sample sizes, (bins - 1) *
    # (1/n_previous + 1/n_current): small days do not raise false alarms.
    psi_warn: float = number(0.1, ge=0, le=100)
    psi_fail: float = number(0.25, ge=0, le=100)


@dataclass(frozen=True)
class StepGuard:
    """How far a candidate moves from production (largest change of any weight)."""

    # WARN when the largest step exceeds this share of training.max_step; ERROR beyond max_step.
    warn_share: float = number(0.9, gt=0, le=1)


@dataclass(frozen=True)
class RegressionGuard:
    """Candidate against production on the held-out requests."""

    # NDCG@5 may be at most this much lower (absolute).
    ndcg_tolerance: float = number(0.01, ge=0, le=1)
    # The lower bound of the bootstrap interval of SNIPS conversion yield (candidate / production
    # - 1) may be at most this far below zero.
    snips_tolerance: float = number(0.05, ge=0, le=1)
    confidence: float = number(0.9, ge=0.5, lt=1)
    bootstrap_samples: int = number(500, ge=100, le=1e5)


@dataclass(frozen=True)
class ExposureGuard:
    """The candidate must not concentrate exposure beyond production's (feedback-loop amplification)."""

    # Tolerated change (absolute): Gini up, catalog coverage down, share of never-shown creators down.
    gini_tolerance: float = number(0.02, ge=0, le=1)
    coverage_tolerance: float = number(0.02, ge=0, le=1)
    new_creator_tolerance: float = number(0.02, ge=0, le=1)


@dataclass(frozen=True)
class ExpectationsGuard:
    """The Great Expectations suite on `normalized_feedback` (see `lib.feedback.expectations`)."""

    # Rows validated per day: a stable hash sample of a larger day (pandas would not hold 10M rows
    # in reasonable time); feedback_id uniqueness is checked exactly on every row regardless.
    sample_rows: int = number(200_000, ge=1, le=1e9)


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
