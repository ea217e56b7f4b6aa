"""Map a day's outcome signals and labels into fbloop's one feedback schema (FR-FB-001).

Each row of the result is one piece of feedback about one served recommendation: an outcome
(impressions, engagements, clicks, conversions) or a reviewer's label, joined to the
recommendation it belongs to (its campaign, creator, rank, score, propensity and weights
version). Privacy is applied here: subject ids become keyed pseudonyms (or vanish, or stay, by
the configured mode), exact ages become buckets, free text and URLs are dropped, and
subject-level signals without the consent flag are excluded and counted. Signals and labels
that refer to no recommendation served within the lookback are rejected with a reason.
Outcomes whose attribution window is still open at the end of the day are marked incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from fbloop_assets.lib.common.config import FbloopConfig
from fbloop_assets.lib.common.privacy import age_bucket, pseudonymize, redacted_text
from fbloop_assets.lib.ingest.day import REJECT_SCHEMA, day_bounds
from fbloop_assets.lib.ingest.landing import EVENT_TYPES, Reason, typed_schema

FEEDBACK_SCHEMA: dict[str, pl.DataType] = {
    "feedback_id": pl.String(),  # stable key: "signal:<signal_id>" or "label:<label_id>"
    "kind": pl.String(),  # outcome | label
    "event_type": pl.String(),  # impression | engagement | click | conversion | label
    "value": pl.Float64(),  # event count; for labels 1.0 useful, 0.0 not useful
    "confidence": pl.Float64(),  # the reviewer's confidence (labels only)
    "source": pl.String(),  # reporting system; "reviewer" for labels
    "reviewer_id": pl.String(),
    "recommendation_id": pl.String(),
    "request_id": pl.String(),
    "campaign_id": pl.String(),
    "creator_id": pl.String(),
    "rank": pl.Int64(),
    "score": pl.Float64(),
    "propensity": pl.Float64(),
    "weights_version": pl.String(),
    "served_at": pl.Datetime("us", "UTC"),
    "event_at": pl.Datetime("us", "UTC"),
    "subject_key": pl.String(),  # keyed pseudonym of the audience member (mode-dependent)
    "age_bucket": pl.String(),
    "subject_country": pl.String(),
    "attribution_closes_at": pl.Datetime("us", "UTC"),  # null for labels
    "attribution_complete": pl.Boolean(),
    "partition_date": pl.Date(),
}

_REC_COLUMNS = tuple(typed_schema("recommendations"))  # every column of the served recommendation


@dataclass
class NormalizedDay:
    feedback: pl.DataFrame
    rejects: pl.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class NormalizationPlan:
    """A day's normalization as a lazy plan: run it with `collect` or stream it to a file."""

    feedback: pl.LazyFrame
    rejects: pl.DataFrame  # unknown recommendations: few, so already collected
    counts: dict[str, int]  # what is known before the plan runs (inputs, unknown, excluded)
    rows_before_dedup: int

    def stats(self, normalized: int, incomplete: int) -> dict[str, int]:
        """All counts, given how many rows the plan produced and how many of them are incomplete."""
        return self.counts | {
            "deduplicated": self.rows_before_dedup - normalized,
            "normalized": normalized,
            "incomplete": incomplete,
        }


def _unknown_rejects(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    reason = pl.format(
        f"{Reason.UNKNOWN_RECOMMENDATION}: recommendation_id '{{}}' was not served in the lookback window",
        pl.col("recommendation_id"),
    )
    record_cols = [c for c in frame.columns if c not in ("landing_file", "landing_row")]
    return frame.select(
        pl.lit("normalized_feedback").alias("stage"),
        pl.lit(source).alias("source"),
        *(
            pl.col(c) if c in frame.columns else pl.lit(None).alias(c)
            for c in ("landing_file", "landing_row")
        ),
        pl.lit(str(Reason.UNKNOWN_RECOMMENDATION)).alias("reason_code"),
        reason.alias("reason"),
        pl.struct([redacted_text(c) for c in record_cols]).struct.json_encode().alias("record"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _subject_columns(signals: pl.LazyFrame, config: FbloopConfig, key: bytes) -> pl.LazyFrame:
    mode = config.privacy.mode
    if mode == "aggregated":
        nulls = [pl.lit(None, pl.String).alias(c) for c in ("subject_key", "age_bucket", "subject_country")]
        return signals.with_columns(nulls)
    if mode == "identifiable":
        subject_key = signals.with_columns(pl.col("subject_id").alias("subject_key"))
    else:
        # HMAC once per distinct subject (a small table), then a join: no Python call per row.
        subjects = signals.select("subject_id").drop_nulls().unique().collect()["subject_id"]
        keys = pl.LazyFrame({"subject_id": subjects, "subject_key": pseudonymize(subjects, key)})
        subject_key = signals.join(keys, on="subject_id", how="left", maintain_order="left")
    return subject_key.with_columns(age_bucket(pl.col("subject_age")).alias("age_bucket"))


def normalize_plan(
    day: date,
    recommendations: pl.LazyFrame,
    signals: pl.LazyFrame,
    labels: pl.LazyFrame,
    config: FbloopConfig,
    key: bytes,
) -> NormalizationPlan:
    """Plan the normalization of one arrival day; ``recommendations`` spans the lookback window.

    Small questions (how many rows, which are unknown, how many lack consent) are answered now;
    the feedback itself stays lazy, so that a large day streams to disk without being held whole.
    """
    _, day_end = day_bounds(day)
    recs = recommendations.select(_REC_COLUMNS).unique("recommendation_id", keep="first", maintain_order=True)
    known = recs.select("recommendation_id")

    unknown_signals = signals.join(known, on="recommendation_id", how="anti").collect()
    unknown_labels = labels.join(known, on="recommendation_id", how="anti").collect()
    rejects = pl.concat(
        [
            _unknown_rejects(unknown_signals, "outcome_signals"),
            _unknown_rejects(unknown_labels, "labels"),
        ]
    )
    consent_flag = config.privacy.consent_flag
    consent = pl.col(consent_flag) if consent_flag in signals.collect_schema().names() else pl.lit(None)
    lacks_consent = pl.col("subject_id").is_not_null() & (consent.fill_null(False).not_())
    signals = signals.join(recs, on="recommendation_id", how="inner", maintain_order="left")
    labels = labels.join(recs, on="recommendation_id", how="inner", maintain_order="left")
    signals_known, excluded = (
        signals.select(pl.len(), lacks_consent.sum()).collect().row(0)  # one pass for both counts
    )
    labels_known = int(labels.select(pl.len()).collect().item())
    signals = _subject_columns(signals.filter(~lacks_consent), config, key)

    windows = config.attribution_windows_days
    window_days = pl.col("event_type").replace_strict(
        {e: getattr(windows, e) for e in EVENT_TYPES}, return_dtype=pl.Float64
    )
    outcomes = signals.select(
        pl.format("signal:{}", "signal_id").alias("feedback_id"),
        pl.lit("outcome").alias("kind"),
        "event_type",
        pl.col("metric_value").alias("value"),
        pl.lit(None, pl.Float64).alias("confidence"),
        "source",
        pl.lit(None, pl.String).alias("reviewer_id"),
        *_REC_COLUMNS,
        pl.col("timestamp").alias("event_at"),
        "subject_key",
        "age_bucket",
        "subject_country",
        (pl.col("served_at") + pl.duration(microseconds=(window_days * 86_400_000_000).cast(pl.Int64))).alias(
            "attribution_closes_at"
        ),
    ).with_columns((pl.col("attribution_closes_at") <= pl.lit(day_end)).alias("attribution_complete"))
    judged = labels.select(
        pl.format("label:{}", "label_id").alias("feedback_id"),
        pl.lit("label").alias("kind"),
        pl.lit("label").alias("event_type"),
        (pl.col("label_value") == "useful").cast(pl.Float64).alias("value"),
        "confidence",
        pl.lit("reviewer").alias("source"),
        "reviewer_id",
        *_REC_COLUMNS,
        pl.col("labeled_at").alias("event_at"),
        pl.lit(None, pl.String).alias("subject_key"),
        pl.lit(None, pl.String).alias("age_bucket"),
        pl.lit(None, pl.String).alias("subject_country"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("attribution_closes_at"),
        pl.lit(True).alias("attribution_complete"),
    )
    feedback = (
        pl.concat([outcomes, judged], how="vertical_relaxed")
        .with_columns(pl.lit(day).alias("partition_date"))
        .unique("feedback_id", keep="first", maintain_order=True)
        .cast(FEEDBACK_SCHEMA)  # type: ignore[arg-type]
        .select(list(FEEDBACK_SCHEMA))
    )
    counts = {
        "signals_in": signals_known + unknown_signals.height,
        "labels_in": labels_known + unknown_labels.height,
        "unknown_recommendation": rejects.height,
        "excluded_no_consent": excluded,
    }
    return NormalizationPlan(
        feedback=feedback,
        rejects=rejects,
        counts=counts,
        rows_before_dedup=signals_known - excluded + labels_known,
    )


def normalize_day(
    day: date,
    recommendations: pl.DataFrame,
    signals: pl.DataFrame,
    labels: pl.DataFrame,
    config: FbloopConfig,
    key: bytes,
) -> NormalizedDay:
    """Normalize one arrival day in memory (see `normalize_plan` for the streaming form)."""
    plan = normalize_plan(day, recommendations.lazy(), signals.lazy(), labels.lazy(), config, key)
    feedback = plan.feedback.collect()
    incomplete = int((~feedback["attribution_complete"]).sum())
    return NormalizedDay(
        feedback=feedback, rejects=plan.rejects, stats=plan.stats(feedback.height, incomplete)
    )
