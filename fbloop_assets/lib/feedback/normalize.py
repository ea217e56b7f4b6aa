"""Map a day's outcome signals and labels into fbloop's one feedback schema (FR-FB-001).

Each row of the result is one piece of feedback about one served recommendation: an outcome
(impressions, engagements, clicks, conversions) or a reviewer's label, joined to the
recommendation it belongs to (its campaign, creator, rank, score, propensity and weights
version). Privacy is applied here: subject ids become keyed pseudonyms (or vanish, or stay, by
the configured mode), exact ages become buckets, free text and URLs are dropped, and
subject-level signals without the consent flag are excluded and counted. Outcomes whose
attribution window is still open at the end of the day are marked incomplete.

Rows are judged in this order, each ending in exactly one place: a signal or label that refers
to no recommendation served within the lookback is quarantined (``unknown_recommendation``); a
subject-level signal without consent is excluded and counted; an event timestamped more than
``ingestion.clock_skew_tolerance_minutes`` before its recommendation was served is quarantined
(``before_serving``), one within the tolerance is clock skew between the systems and keeps the
row with ``event_at`` set to ``served_at`` (the earliest moment it can truly have happened, so
that every row the expectation suite sees holds ``event_at >= served_at``); a second row with the
same feedback id is counted as deduplicated.

In ``aggregated`` privacy mode an outcome does not stay a row of its own: the day's outcomes of
one recommendation, event type and source become one count (`counts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from fbloop_assets.lib.common.config import AttributionWindows, FbloopConfig
from fbloop_assets.lib.common.privacy import age_bucket, pseudonymize, redacted_text
from fbloop_assets.lib.feedback.counts import as_counts, first_deliveries
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
    rejects: pl.DataFrame  # unknown recommendations, events before serving: few, so collected now
    counts: dict[str, int]  # what is known before the plan runs (inputs, refused, excluded, clamped)
    rows_before_dedup: int
    collapsed: int = 0  # outcome rows folded into per-recommendation counts (aggregated mode)

    def stats(self, normalized: int, incomplete: int) -> dict[str, int]:
        """All counts, given how many rows the plan produced and how many of them are incomplete."""
        return self.counts | {
            "deduplicated": self.rows_before_dedup - self.collapsed - normalized,
            "collapsed_into_counts": self.collapsed,
            "normalized": normalized,
            "incomplete": incomplete,
        }


def _refused(frame: pl.DataFrame, source: str, reason: pl.Expr, columns: list[str]) -> pl.DataFrame:
    """Rejects of normalization: ``columns`` of ``frame`` are the rows as ingested, with provenance."""
    record_cols = [c for c in columns if c not in ("landing_file", "landing_row")]
    return frame.select(
        pl.lit("normalized_feedback").alias("stage"),
        pl.lit(source).alias("source"),
        *(pl.col(c) if c in columns else pl.lit(None).alias(c) for c in ("landing_file", "landing_row")),
        reason.str.split(":").list.first().alias("reason_code"),
        reason.alias("reason"),
        pl.struct([redacted_text(c) for c in record_cols]).struct.json_encode().alias("record"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _unknown_reason() -> pl.Expr:
    return pl.format(
        f"{Reason.UNKNOWN_RECOMMENDATION}: recommendation_id '{{}}' was not served in the lookback window",
        pl.col("recommendation_id"),
    )


def _early_reason(event: str, tolerance: float) -> pl.Expr:
    minutes = ((pl.col("served_at") - pl.col(event)).dt.total_seconds() / 60).round(1)
    return pl.format(
        f"{Reason.BEFORE_SERVING}: {event} {{}} is {{}} minutes before recommendation '{{}}' was served "
        f"({{}}; clock-skew tolerance {tolerance:g} minutes)",
        pl.col(event).dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"),
        minutes,
        pl.col("recommendation_id"),
        pl.col("served_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"),
    )


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


@dataclass
class _Judged:
    """One source's rows joined to their recommendations, and what was judged about them."""

    kept: pl.LazyFrame  # known, consented, not before serving
    refused: list[pl.DataFrame]  # unknown recommendation, before serving
    counts: dict[str, int]  # known, excluded_no_consent, before_serving, clamped_clock_skew, unknown


def _judge(
    rows: pl.LazyFrame, recs: pl.LazyFrame, source: str, event: str, excluded: pl.Expr, tolerance: float
) -> _Judged:
    """Split ``rows`` of ``source`` (event time in column ``event``) by the rules of the module docstring.

    Only counts and the few refused rows are collected; the kept rows stay lazy.
    """
    columns = rows.collect_schema().names()
    unknown = rows.join(recs.select("recommendation_id"), on="recommendation_id", how="anti").collect()
    joined = rows.join(recs, on="recommendation_id", how="inner", maintain_order="left")
    early = ~excluded & (pl.col(event) < pl.col("served_at") - pl.duration(seconds=tolerance * 60))
    clamped = ~excluded & ~early & (pl.col(event) < pl.col("served_at"))
    known, n_excluded, n_early, n_clamped = (  # one pass over the joined rows for every count
        joined.select(
            pl.len().alias("known"),
            excluded.sum().alias("excluded"),
            early.sum().alias("early"),
            clamped.sum().alias("clamped"),
        )
        .collect()
        .row(0)
    )
    refused = [_refused(unknown, source, _unknown_reason(), columns)]
    if n_early:
        before = joined.filter(early).collect()
        refused.append(_refused(before, source, _early_reason(event, tolerance), columns))
    counts = {
        "known": known,
        "unknown_recommendation": unknown.height,
        "excluded_no_consent": int(n_excluded),
        "before_serving": n_early,
        "clamped_clock_skew": n_clamped,
    }
    return _Judged(joined.filter(~excluded & ~early), refused, counts)


def _outcomes(signals: pl.LazyFrame, windows: AttributionWindows, day_end: datetime) -> pl.LazyFrame:
    window_days = pl.col("event_type").replace_strict(
        {e: getattr(windows, e) for e in EVENT_TYPES}, return_dtype=pl.Float64
    )
    window = pl.duration(microseconds=(window_days * 86_400_000_000).cast(pl.Int64))
    return signals.select(
        pl.format("signal:{}", "signal_id").alias("feedback_id"),
        pl.lit("outcome").alias("kind"),
        "event_type",
        pl.col("metric_value").alias("value"),
        pl.lit(None, pl.Float64).alias("confidence"),
        "source",
        pl.lit(None, pl.String).alias("reviewer_id"),
        *_REC_COLUMNS,
        pl.max_horizontal("timestamp", "served_at").alias("event_at"),  # clock skew: see the docstring
        "subject_key",
        "age_bucket",
        "subject_country",
        (pl.col("served_at") + window).alias("attribution_closes_at"),
    ).with_columns((pl.col("attribution_closes_at") <= pl.lit(day_end)).alias("attribution_complete"))


def _labels(labels: pl.LazyFrame) -> pl.LazyFrame:
    return labels.select(
        pl.format("label:{}", "label_id").alias("feedback_id"),
        pl.lit("label").alias("kind"),
        pl.lit("label").alias("event_type"),
        (pl.col("label_value") == "useful").cast(pl.Float64).alias("value"),
        "confidence",
        pl.lit("reviewer").alias("source"),
        "reviewer_id",
        *_REC_COLUMNS,
        pl.max_horizontal("labeled_at", "served_at").alias("event_at"),
        pl.lit(None, pl.String).alias("subject_key"),
        pl.lit(None, pl.String).alias("age_bucket"),
        pl.lit(None, pl.String).alias("subject_country"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("attribution_closes_at"),
        pl.lit(True).alias("attribution_complete"),
    )


def normalize_plan(
    day: date,
    recommendations: pl.LazyFrame,
    signals: pl.LazyFrame,
    labels: pl.LazyFrame,
    config: FbloopConfig,
    key: bytes,
    earlier_signals: pl.LazyFrame | None = None,
) -> NormalizationPlan:
    """Plan the normalization of one arrival day; ``recommendations`` spans the lookback window.

    ``earlier_signals`` (a ``signal_id`` column: the raw signals of the lookback's earlier days) is
    read in aggregated mode only, where a re-delivered signal could not be recognized later.
    Small questions (how many rows, which are refused, how many lack consent) are answered now;
    the feedback itself stays lazy, so that a large day streams to disk without being held whole.
    """
    _, day_end = day_bounds(day)
    recs = recommendations.select(_REC_COLUMNS).unique("recommendation_id", keep="first", maintain_order=True)
    tolerance = config.ingestion.clock_skew_tolerance_minutes
    flag = config.privacy.consent_flag
    consent = pl.col(flag) if flag in signals.collect_schema().names() else pl.lit(None, pl.Boolean)
    lacks_consent = pl.col("subject_id").is_not_null() & consent.fill_null(False).not_()
    judged_signals = _judge(signals, recs, "outcome_signals", "timestamp", lacks_consent, tolerance)
    judged_labels = _judge(labels, recs, "labels", "labeled_at", pl.lit(False), tolerance)
    aggregated = config.privacy.mode == "aggregated"
    delivered = first_deliveries(judged_signals.kept, earlier_signals) if aggregated else judged_signals.kept
    outcomes = _outcomes(_subject_columns(delivered, config, key), config.attribution_windows_days, day_end)
    collapsed = 0
    if aggregated:
        outcomes, collapsed = as_counts(outcomes, day, day_end)
    feedback = (
        pl.concat([outcomes, _labels(judged_labels.kept)], how="vertical_relaxed")
        .with_columns(pl.lit(day).alias("partition_date"))
        .unique("feedback_id", keep="first", maintain_order=True)
        .cast(FEEDBACK_SCHEMA)  # type: ignore[arg-type]
        .select(list(FEEDBACK_SCHEMA))
    )
    s, lab = judged_signals.counts, judged_labels.counts
    counts = {
        "signals_in": s["known"] + s["unknown_recommendation"],
        "labels_in": lab["known"] + lab["unknown_recommendation"],
        "unknown_recommendation": s["unknown_recommendation"] + lab["unknown_recommendation"],
        "excluded_no_consent": s["excluded_no_consent"],
        "before_serving": s["before_serving"] + lab["before_serving"],
        "clamped_clock_skew": s["clamped_clock_skew"] + lab["clamped_clock_skew"],
    }
    kept = sum(c["known"] - c["excluded_no_consent"] - c["before_serving"] for c in (s, lab))
    return NormalizationPlan(
        feedback=feedback,
        rejects=pl.concat([*judged_signals.refused, *judged_labels.refused]),
        counts=counts,
        rows_before_dedup=kept,
        collapsed=collapsed,
    )


def normalize_day(
    day: date,
    recommendations: pl.DataFrame,
    signals: pl.DataFrame,
    labels: pl.DataFrame,
    config: FbloopConfig,
    key: bytes,
    earlier_signals: pl.DataFrame | None = None,
) -> NormalizedDay:
    """Normalize one arrival day in memory (see `normalize_plan` for the streaming form)."""
    earlier = earlier_signals.lazy() if earlier_signals is not None else None
    plan = normalize_plan(day, recommendations.lazy(), signals.lazy(), labels.lazy(), config, key, earlier)
    feedback = plan.feedback.collect()
    incomplete = int((~feedback["attribution_complete"]).sum())
    return NormalizedDay(
        feedback=feedback, rejects=plan.rejects, stats=plan.stats(feedback.height, incomplete)
    )
