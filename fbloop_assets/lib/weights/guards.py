"""Guards on a candidate against production: step size, no regression, exposure.

- `step_size`: how far the candidate moved any single weight from production.
- `no_regression`: NDCG@5 and SNIPS conversion yield on the held-out requests, the latter with
  a bootstrap interval over slates (`relative_yield_interval`).
- `exposure`: exposure Gini, catalog coverage and the share of exposure going to creators never
  shown before must not get worse than production's beyond their tolerances (feedback-loop
  amplification: a loop that only shows what it showed before learns only about that).

Inputs are the dicts `evaluation.evaluate` returns and the frame of `evaluation.paired_yields`;
each guard returns a `GuardOutcome`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.bootstrap import resampled_totals
from fbloop_assets.lib.common.config import ExposureGuard, ObjectiveConfig, RegressionGuard, StepGuard
from fbloop_assets.lib.common.outcome import GuardOutcome, Verdict, grade, worst


def step_size(
    candidate: dict[str, float], production: dict[str, float], max_step: float, config: StepGuard
) -> GuardOutcome:
    """The largest absolute change of any weight between candidate and production.

    FAIL above ``max_step`` (+1e-9 for rounding), WARN above ``warn_share`` of it, else PASS. A
    feature only one side has is a FAIL (its step is not defined).
    """
    threshold = {"max_step": max_step, "warn_above": round(config.warn_share * max_step, 6)}
    lacking = sorted(set(candidate) ^ set(production))
    if lacking:
        detail = f"weights differ in features: {', '.join(lacking)}"
        return GuardOutcome("step_size", "fail", {"lacking": lacking}, threshold, detail)
    steps = {f: float(candidate[f] - production[f]) for f in sorted(candidate)}
    if not steps:
        return GuardOutcome("step_size", "pass", {"largest": 0.0, "steps": {}}, threshold, "no weights")
    feature = max(steps, key=lambda f: abs(steps[f]))
    largest = abs(steps[feature])
    verdict = grade(largest, config.warn_share * max_step, max_step + 1e-9)
    value = {
        "largest": round(largest, 6),
        "feature": feature,
        "steps": {f: round(s, 6) for f, s in steps.items()},
    }
    detail = (
        f"largest step {feature} {production[feature]:.4f} → {candidate[feature]:.4f} "
        f"({steps[feature]:+.4f}); max {max_step}, warn above {config.warn_share * max_step:.4f}"
    )
    return GuardOutcome("step_size", verdict, value, threshold, detail)


def relative_yield_interval(
    paired: pl.DataFrame, samples: int, confidence: float, seed: int = 0
) -> tuple[float, float, float] | None:
    """SNIPS conversion yield candidate / production - 1, with one-sided bounds at ``confidence``.

    ``paired``: request_id, w_candidate, w_production, yield (`evaluation.paired_yields`). Each arm's
    SNIPS is Σ w·yield / Σ w. The bootstrap resamples slates (request ids, the unit served
    together) with replacement: per slate the sums of w·yield and w of each arm, then a matrix of
    resample counts times those sums gives every resample's four totals at once (`bootstrap`). Returns
    (estimate, lower, upper): the percentile bounds at ``1 - confidence`` and ``confidence``, each
    a one-sided bound at ``confidence``. None without slates or when production's yield is 0
    (resamples in which it is 0 are left out of the quantiles).
    """
    per_slate = (
        paired.group_by("request_id")
        .agg(
            (pl.col("w_candidate") * pl.col("yield")).sum().alias("wcy"),
            pl.col("w_candidate").sum().alias("wc"),
            (pl.col("w_production") * pl.col("yield")).sum().alias("wpy"),
            pl.col("w_production").sum().alias("wp"),
        )
        .sort("request_id")
    )
    sums = per_slate.select(pl.exclude("request_id")).to_numpy().astype(np.float64)
    n = sums.shape[0]
    total = sums.sum(axis=0)
    if n == 0 or total[1] <= 0 or total[3] <= 0 or total[2] <= 0:
        return None
    estimate = (total[0] / total[1]) / (total[2] / total[3]) - 1.0
    boot = resampled_totals(sums, samples, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (boot[:, 0] / boot[:, 1]) / (boot[:, 2] / boot[:, 3]) - 1.0
    ratios = ratios[np.isfinite(ratios)]
    if not ratios.size:
        return None
    lower, upper = np.quantile(ratios, [1.0 - confidence, confidence])
    return float(estimate), float(lower), float(upper)


def _unmeasurable(
    c_ndcg: float | None,
    p_ndcg: float | None,
    c_yield: float | None,
    p_yield: float | None,
    bounds: tuple[float, float, float] | None,
    name: str = "conversion",
) -> list[str]:
    """What `no_regression` cannot measure, in words."""
    missing = []
    if c_ndcg is None or p_ndcg is None:
        missing.append("NDCG@5 (no labeled held-out records with a relevant creator)")
    if c_yield is None or p_yield is None or p_yield <= 0:
        missing.append(f"SNIPS {name} yield (no logged held-out outcomes to weigh)")
    elif bounds is None:
        missing.append(f"SNIPS {name} yield interval (no paired held-out slates)")
    return missing


def _regression_verdict(
    c_ndcg: float,
    p_ndcg: float,
    c_yield: float,
    p_yield: float,
    lower: float,
    config: RegressionGuard,
    name: str = "conversion",
) -> tuple[Verdict, str]:
    worse = []
    if c_ndcg < p_ndcg - config.ndcg_tolerance:
        worse.append("NDCG@5")
    if lower < -config.snips_tolerance:
        worse.append(f"SNIPS {name} yield")
    if worse:
        return "fail", f"regression in {' and '.join(worse)}"
    if c_ndcg < p_ndcg or c_yield < p_yield:
        return "warn", "slightly worse, within tolerance"
    return "pass", "no regression"


def no_regression(
    candidate: dict[str, Any] | None,
    production: dict[str, Any],
    paired: pl.DataFrame | None,
    config: RegressionGuard,
    seed: int = 0,
    objective: ObjectiveConfig | None = None,
) -> GuardOutcome:
    """The candidate is not worse than production on the held-out requests (with ``objective``:
    on ``snips_objective_yield``, and on NDCG@5 only when the objective uses labels).

    - NDCG@5: FAIL when the candidate's is more than ``ndcg_tolerance`` (absolute) below production's.
    - SNIPS conversion yield: the relative difference candidate / production - 1 with a percentile
      bootstrap over slates (`relative_yield_interval`, ``bootstrap_samples`` resamples, seeded).
      FAIL when its **one-sided** lower bound at ``confidence`` (the ``1 - confidence`` quantile)
      lies below ``-snips_tolerance``: a non-inferiority test, the candidate must show with
      ``confidence`` that it is at most ``snips_tolerance`` worse.
    - FAIL when either is not measurable (None, production's yield 0, no paired slates).
    - WARN when a point estimate is below production's but within tolerance; else PASS.
    - No candidate: WARN.
    """
    floor = -config.snips_tolerance
    threshold: dict[str, Any] = {
        "ndcg_at_5_floor": None,
        "snips_relative_floor": floor,
        "confidence": config.confidence,
        "interval": "one-sided percentile bootstrap bounds over slates",
        "bootstrap_samples": config.bootstrap_samples,
    }
    if candidate is None:
        return GuardOutcome("no_regression", "warn", None, threshold, "no candidate to judge")
    name = "conversion" if objective is None else "objective"
    judge_ndcg = objective is None or objective.uses_labels
    c_ndcg, p_ndcg = candidate.get("ndcg_at_5"), production.get("ndcg_at_5")
    if not judge_ndcg:
        c_ndcg = p_ndcg = 0.0  # equal: neither needed nor judged
    c_yield, p_yield = candidate.get(f"snips_{name}_yield"), production.get(f"snips_{name}_yield")
    bounds = None
    if paired is not None and paired.height:
        bounds = relative_yield_interval(paired, config.bootstrap_samples, config.confidence, seed)
    if p_ndcg is not None and judge_ndcg:
        threshold["ndcg_at_5_floor"] = round(p_ndcg - config.ndcg_tolerance, 6)
    value: dict[str, Any] = {
        "ndcg_at_5": {"candidate": c_ndcg, "production": p_ndcg} if judge_ndcg else None,
        f"snips_{name}_yield": {"candidate": c_yield, "production": p_yield},
        "snips_relative": None,
        "slates": paired["request_id"].n_unique() if paired is not None else 0,
    }
    unmeasurable = _unmeasurable(c_ndcg, p_ndcg, c_yield, p_yield, bounds, name)
    if (
        unmeasurable
        or c_ndcg is None
        or p_ndcg is None
        or c_yield is None
        or p_yield is None
        or bounds is None
    ):
        return GuardOutcome(
            "no_regression", "fail", value, threshold, "not measurable: " + "; ".join(unmeasurable)
        )
    relative = c_yield / p_yield - 1.0
    _, lower, upper = bounds
    value["snips_relative"] = {
        "estimate": round(relative, 6),
        "lower": round(lower, 6),
        "upper": round(upper, 6),
    }
    pct = round(config.confidence * 100)
    ndcg_text = (
        f"NDCG@5 {c_ndcg:.4f} vs {p_ndcg:.4f} (floor {p_ndcg - config.ndcg_tolerance:.4f})"
        if judge_ndcg
        else "NDCG@5 not judged (the objective uses no labels)"
    )
    snips_text = (
        f"SNIPS {name} per 1k impressions {c_yield:.3f} vs {p_yield:.3f} ({relative:+.1%}, "
        f"{pct}% lower bound {lower:+.1%}, floor {floor:+.0%})"
    )
    verdict, label = _regression_verdict(c_ndcg, p_ndcg, c_yield, p_yield, lower, config, name)
    return GuardOutcome("no_regression", verdict, value, threshold, f"{label}: {ndcg_text}; {snips_text}")


# metric, whether higher is worse, ExposureGuard field of its tolerance
_EXPOSURE = (
    ("exposure_gini", True, "gini_tolerance"),
    ("catalog_coverage", False, "coverage_tolerance"),
    ("new_creator_share", False, "new_creator_tolerance"),
)


def exposure(
    candidate: dict[str, Any] | None, production: dict[str, Any], config: ExposureGuard
) -> GuardOutcome:
    """Exposure no more concentrated than production's: Gini up, coverage and new-creator share down.

    Per metric the change in the worse direction (absolute): FAIL beyond its tolerance, WARN when
    worse within it, PASS otherwise. A metric not measurable on either side WARNs. No candidate: WARN.
    """
    threshold = {metric: getattr(config, tolerance) for metric, _, tolerance in _EXPOSURE}
    if candidate is None:
        return GuardOutcome("exposure", "warn", None, threshold, "no candidate to judge")
    value: dict[str, Any] = {}
    verdicts: dict[str, Verdict] = {}
    parts = []
    for metric, higher_is_worse, tolerance_name in _EXPOSURE:
        c, p = candidate.get(metric), production.get(metric)
        if c is None or p is None:
            value[metric] = {"candidate": c, "production": p, "worse_by": None}
            verdicts[metric] = "warn"
            parts.append(f"{metric} not measurable")
            continue
        worse_by = (c - p) if higher_is_worse else (p - c)
        tolerance = getattr(config, tolerance_name)
        verdicts[metric] = grade(worse_by, 0.0, tolerance)
        value[metric] = {"candidate": round(c, 6), "production": round(p, 6), "worse_by": round(worse_by, 6)}
        state = "worse" if worse_by > 0 else "not worse"
        parts.append(
            f"{metric} {c:.4f} vs {p:.4f} ({state} by {max(worse_by, 0.0):.4f}, tolerance {tolerance})"
        )
    verdict = worst(list(verdicts.values()))
    if verdict == "pass":
        return GuardOutcome(
            "exposure", "pass", value, threshold, "exposure no more concentrated: " + "; ".join(parts)
        )
    named = [p for p, m in zip(parts, verdicts, strict=True) if verdicts[m] == verdict]
    if verdict == "fail":
        label = "exposure concentrates beyond tolerance"
    elif all(value[m]["worse_by"] is not None for m in verdicts if verdicts[m] == "warn"):
        label = "exposure slightly more concentrated, within tolerance"
    else:
        label = "exposure not fully measurable"
    return GuardOutcome("exposure", verdict, value, threshold, f"{label}: " + "; ".join(named))
