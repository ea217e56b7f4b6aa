"""`fbloop demo`'s text: reasons whole and wrapped at spaces, day lines once in a terminal (16.5)."""

from __future__ import annotations

from typing import Any

from fbloop_assets.demo import INDENT, LINE_WIDTH, render, render_day

# a real cause from a blocked day, longer than the 200 characters the line used to cut it to
CAUSE = (
    "weights_evaluation/no_regression: regression in SNIPS conversion yield: NDCG@5 0.9511 vs 0.9321 "
    "(floor 0.9221); SNIPS conversions per 1k impressions 0.221 vs 0.232 (-4.8%, 90% lower bound "
    "-10.3%, floor -5.0%); exposure within tolerance; step size 0.42 of 0.5"
)


def _day(day: str, blocked: list[str]) -> dict[str, Any]:
    return {
        "day": day,
        "attacks": [],
        "served_by": {"production": "w0", "canary": "w-610f50fb7099"},
        "blocked": blocked,
        "promoted": False,
        "production_changed": False,
        "production": "w0",
        "production_before": "w0",
        "reason": "no candidate today",
        "dataset_records": 10440,
        "dataset_labeled": 988,
        "ndcg_at_5": 0.951,
        "production_ndcg_at_5": 0.932,
        "snips_conversion_yield": 0.221,
        "production_snips_conversion_yield": 0.232,
        "true_ndcg_at_5": 0.905,
        "candidate_true_ndcg_at_5": 0.875,
        "exposure_gini": 0.866,
        "catalog_coverage": 0.196,
    }


def test_a_long_reason_is_whole_and_wrapped_between_words() -> None:
    text = render_day(_day("2026-01-13", [CAUSE]))
    lines = text.splitlines()
    assert len(lines) > 1 and "…" not in text
    assert all(len(line) <= LINE_WIDTH for line in lines)
    assert all(line.startswith(INDENT) and not line[len(INDENT)].isspace() for line in lines[1:])
    # joined again at the breaks, the reason reads as it was written: no word was cut
    assert CAUSE in " ".join(line.strip() for line in lines)


def test_the_report_can_leave_out_the_days_a_terminal_already_showed() -> None:
    side = {"version": "w0", "weights": {}, "true_ndcg_at_5": 0.8}
    ends = {"day": "2026-01-13", "true_ndcg_at_5": 0.9, "exposure_gini": 0.87, "catalog_coverage": 0.2}
    report = {
        "days": [_day("2026-01-12", []), _day("2026-01-13", [CAUSE])],
        "initial": side,
        "final": side,
        "initial_weights_with_final_features": {"true_ndcg_at_5": 0.85},
        "true_ndcg_lift": 0.0,
        "true_ndcg_lift_from_reweighting": 0.0,
        "ceiling": {"true_ndcg_at_5": 0.95},
        "share_of_ceiling": 0.8 / 0.95,
        "production_changes": 0,
        "first_day": ends,
        "last_day": ends,
        "attacks": {},
        "guards": True,
        "blocked_days": 1,
    }
    full, summary_only = render(report), render(report, with_days=False)
    assert full.count("2026-01-12  served by") == 1 and full.endswith(summary_only)
    assert "served by" not in summary_only and summary_only.startswith("production changed 0 time(s)")
