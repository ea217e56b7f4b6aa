"""Staging, canary, production: how weights that passed their checks reach production, or do not.

Every loop day, in this order (`review_canary`, run by the `canary_review` asset, then `stage`,
run by `production_weights`):

1. **Canary review.** A canary that has served ``canary.days`` days is compared with production
   on the live outcomes of each arm's own slates, served on the same days and observed up to the
   same moment (so late outcomes affect both arms alike). Per arm the estimate is SNIPS over its
   own slates: the logging policy is the arm's own, so every importance weight is 1 and SNIPS is
   a plain ratio of sums. Metrics: clicks and conversions per 1,000 impressions (relevance shows
   there; totals per slate mostly measure the creators' reach and are too noisy to judge on). The
   interval of ``canary / production − 1`` is a percentile bootstrap over slates.
   - *regression*, the interval lies entirely below ``−canary.tolerance`` for either metric: the
     canary is rolled back (canary and staging cleared), with the evidence;
   - *pass*, no metric's estimate is below ``−canary.tolerance``: the canary becomes production;
   - otherwise *inconclusive*, or fewer than ``canary.min_slates`` slates in an arm: the canary
     keeps serving, until ``canary.max_days``, when it is rolled back: a version that has not
     shown it is at least as good does not reach production.
2. **Staging.** The day's candidate moves to staging when every blocking check passed.
3. **Canary start.** With no canary running, a staged version that never ran as canary starts
   serving ``canary.share`` of requests (by a hash of the request id). With ``canary.share = 0``
   the staged version goes straight to production.

Routing (`serving.canary_arm`) is deterministic per request id and independent of the evaluation holdout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.bootstrap import resampled_totals
from fbloop_assets.lib.common.config import CanaryConfig
from fbloop_assets.lib.dataset.build import feedback_aggregates, feedback_masks
from fbloop_assets.lib.weights.registry import AliasMove, Registry

CANARY_METRICS = ("clicks", "conversions")
LOOP_ACTOR = "loop"


def slate_outcomes(recommendations: pl.LazyFrame, feedback: pl.LazyFrame) -> pl.DataFrame:
    """Per served slate (request): its weights version and outcomes observed so far in their windows."""
    recs = recommendations.select("recommendation_id", "request_id", "weights_version").unique(
        "recommendation_id", keep="first"
    )
    per_rec = (
        feedback.join(recs.select("recommendation_id"), on="recommendation_id", how="semi")
        .unique("feedback_id", keep="first")
        .select("recommendation_id", *feedback_masks())
        .group_by("recommendation_id")
        .agg(*feedback_aggregates())
    )
    return (
        recs.join(per_rec, on="recommendation_id", how="left")
        .group_by("request_id", "weights_version")
        .agg(*(pl.col(m).fill_null(0.0).sum() for m in ("impressions", *CANARY_METRICS)))
        .sort("request_id")
        .collect()
    )


@dataclass(frozen=True)
class ArmComparison:
    canary: str
    production: str
    slates: dict[str, int]  # per arm
    yields: dict[str, dict[str, float]]  # arm -> metric -> outcomes per 1,000 impressions
    lift: dict[str, float | None]  # metric -> canary / production - 1
    interval: dict[str, tuple[float, float] | None]  # metric -> bootstrap interval of the lift
    confidence: float
    verdict: str  # "wait" (too few slates), "regression", "pass" or "inconclusive"
    detail: str

    @property
    def regression(self) -> bool:
        return self.verdict == "regression"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _yield(outcomes: np.ndarray, impressions: np.ndarray) -> float:
    return float(outcomes.sum() / impressions.sum() * 1000.0) if impressions.sum() > 0 else 0.0


def compare_arms(
    slates: pl.DataFrame, canary: str, production: str, config: CanaryConfig, seed: int = 0
) -> ArmComparison:
    """Canary versus production on the outcomes of their own slates (see the module docstring)."""
    arms = {
        a: slates.filter(pl.col("weights_version") == v)
        for a, v in (("canary", canary), ("production", production))
    }
    counts = {a: f.height for a, f in arms.items()}
    yields = {
        a: {m: _yield(f[m].to_numpy(), f["impressions"].to_numpy()) for m in CANARY_METRICS}
        for a, f in arms.items()
    }
    enough = min(counts.values()) >= config.min_slates
    lift: dict[str, float | None] = dict.fromkeys(CANARY_METRICS)
    interval: dict[str, tuple[float, float] | None] = dict.fromkeys(CANARY_METRICS)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - config.confidence) / 2.0
    if enough:
        # Resample slates (the unit that was randomized), then take each arm's ratio of sums.
        columns = [*CANARY_METRICS, "impressions"]
        totals = {
            a: resampled_totals(f.select(columns).to_numpy(), config.bootstrap_samples, rng)
            for a, f in arms.items()
        }
        for i, m in enumerate(CANARY_METRICS):
            if yields["production"][m] <= 0:
                continue
            lift[m] = yields["canary"][m] / yields["production"][m] - 1.0
            boot = {a: t[:, i] / np.maximum(t[:, -1], 1e-9) for a, t in totals.items()}
            ratios = boot["canary"] / np.where(boot["production"] > 0, boot["production"], np.nan) - 1.0
            low, high = np.nanquantile(ratios, [alpha, 1.0 - alpha])
            interval[m] = (float(low), float(high))
    measured = [m for m in CANARY_METRICS if interval[m] is not None]
    worse = [m for m in measured if interval[m][1] < -config.tolerance]  # type: ignore[index]
    if not enough or not measured:
        verdict = "wait"
    elif worse:
        verdict = "regression"
    elif all(lift[m] >= -config.tolerance for m in measured):  # type: ignore[operator]
        verdict = "pass"
    else:
        verdict = "inconclusive"
    pct = round(config.confidence * 100)
    slates_text = f"{counts['canary']:,} canary and {counts['production']:,} production slates"
    if verdict == "wait":
        detail = f"not enough evidence yet: {slates_text} (min {config.min_slates:,} each, with outcomes)"
    else:
        parts = []
        for m in measured:
            low, high = interval[m]  # type: ignore[misc]
            parts.append(
                f"{m} per 1k impressions {yields['canary'][m]:.3f} vs {yields['production'][m]:.3f}"
                f" ({lift[m]:+.1%}, {pct}% interval {low:+.1%} to {high:+.1%})"
            )
        label = {
            "regression": f"regression in {', '.join(worse)}",
            "pass": f"no regression (none worse than -{config.tolerance:.0%})",
            "inconclusive": f"inconclusive (worse than -{config.tolerance:.0%}, not significantly)",
        }[verdict]
        detail = f"{label}: " + "; ".join(parts) + f", on {slates_text}"
    return ArmComparison(
        canary=canary,
        production=production,
        slates=counts,
        yields=yields,
        lift=lift,
        interval=interval,
        confidence=config.confidence,
        verdict=verdict,
        detail=detail,
    )


@dataclass(frozen=True)
class DayOutcome:
    """What `review_canary` or `stage` did on one loop day."""

    moves: list[AliasMove]
    review: ArmComparison | None
    notes: list[str]


def canary_serving_days(registry: Registry, day: date) -> tuple[str, date] | None:
    """The canary that served on ``day`` and the first day it served (None: no canary)."""
    moves = [m for m in registry.history("canary") if m.effective_day <= day.isoformat()]
    if not moves or moves[-1].to_version is None:
        return None
    return moves[-1].to_version, date.fromisoformat(moves[-1].effective_day)


def review_canary(
    registry: Registry,
    day: date,
    slates_for: Callable[[date, date], pl.DataFrame],
    config: CanaryConfig,
) -> DayOutcome:
    """Review a canary that has served ``canary.days``: promote it, roll it back, or keep it serving.

    ``slates_for(first, last)`` returns `slate_outcomes` of the slates served on those days.
    """
    moves: list[AliasMove] = []
    notes: list[str] = []
    review: ArmComparison | None = None

    def move(alias: str, to: str | None, reason: str, evidence: dict[str, Any] | None = None) -> None:
        done = registry.move(alias, to, reason, actor=LOOP_ACTOR, day=day, evidence=evidence)
        if done is not None:
            moves.append(done)

    production = registry.in_force("production", day) or "w0"
    running = canary_serving_days(registry, day)
    if running is not None and running[0] != production:
        canary, first = running
        served_days = (day - first).days + 1
        if served_days < config.days:
            notes.append(f"canary {canary} has served {served_days} of {config.days} day(s)")
        else:
            review = compare_arms(slates_for(first, day), canary, production, config, seed=day.toordinal())
            evidence = {"first_day": first.isoformat(), "last_day": day.isoformat(), **review.as_dict()}
            give_up = served_days >= config.max_days
            if review.verdict == "pass":
                move("production", canary, f"canary passed: {review.detail}", evidence)
                move("canary", None, f"promoted to production: {review.detail}", evidence)
            elif review.verdict == "regression" or give_up:
                why = review.detail if review.regression else f"after {served_days} days, {review.detail}"
                reason = f"canary rolled back: {why}"
                move("canary", None, reason, evidence)
                if registry.current("staging") == canary:
                    move("staging", None, reason, evidence)
            else:
                serving = f"day {served_days} of at most {config.max_days}"
                notes.append(f"canary {canary} keeps serving ({serving}): {review.detail}")
    return DayOutcome(moves=moves, review=review, notes=notes)


def stage(
    registry: Registry, day: date, candidate: str | None, candidate_failed: list[str], config: CanaryConfig
) -> DayOutcome:
    """Stage the day's candidate unless a guard failed; start the next canary (or promote, share 0)."""
    moves: list[AliasMove] = []
    notes: list[str] = []

    def move(alias: str, to: str | None, reason: str) -> None:
        done = registry.move(alias, to, reason, actor=LOOP_ACTOR, day=day)
        if done is not None:
            moves.append(done)

    production = registry.current("production") or "w0"
    if candidate is not None and not candidate_failed and candidate != production:
        move("staging", candidate, "passed every blocking check")
    elif candidate_failed:
        notes.append(f"candidate {candidate or '(none)'} not staged: failed {', '.join(candidate_failed)}")
    elif candidate is None:
        notes.append("no candidate today")

    staged = registry.current("staging")
    canary_now = registry.current("canary")
    tried = {m.to_version for m in registry.history("canary")}
    if staged is not None and staged != production and canary_now is None and staged not in tried:
        if config.share > 0:
            reason = f"staged version starts serving {config.share:.0%} of requests as canary"
            move("canary", staged, reason)
        else:
            reason = "staged version promoted directly (canary.share = 0)"
            move("production", staged, reason)
    return DayOutcome(moves=moves, review=None, notes=notes)
