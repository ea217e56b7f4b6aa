"""The checks that gate `production_weights`, as pure functions returning value, threshold, verdict.

- ``enough_records``: the dataset holds at least ``min_records`` examples and its evaluation
  share at least ``min_labeled`` labeled ones; fewer, and no metric is trustworthy.
- ``no_regression``: the candidate's NDCG@5 is at most ``ndcg_tolerance`` below production's
  (absolute) and its SNIPS estimate of the conversion yield (conversions per 1,000 impressions)
  at most ``snips_tolerance`` below production's (relative), both on the same held-out requests.

A candidate moves to staging only when every check passed (`rollout`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fbloop_assets.lib.config import PromotionConfig


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    value: Any
    threshold: Any
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def enough_records(records: int, labeled: int, config: PromotionConfig) -> CheckOutcome:
    passed = records >= config.min_records and labeled >= config.min_labeled
    return CheckOutcome(
        name="enough_records",
        passed=passed,
        value={"records": records, "labeled_holdout": labeled},
        threshold={"records": config.min_records, "labeled_holdout": config.min_labeled},
        detail=(
            f"{records:,} records (min {config.min_records:,}), "
            f"{labeled:,} labeled held-out records (min {config.min_labeled:,})"
        ),
    )


def no_regression(
    candidate: dict[str, Any], production: dict[str, Any], config: PromotionConfig
) -> CheckOutcome:
    c_ndcg, p_ndcg = candidate.get("ndcg_at_5"), production.get("ndcg_at_5")
    c_conv, p_conv = (
        candidate.get("snips_conversion_yield"),
        production.get("snips_conversion_yield"),
    )
    if c_ndcg is None or p_ndcg is None or c_conv is None or p_conv is None:
        return CheckOutcome(
            "no_regression", False, None, None, "not measurable: no labeled or logged records to compare on"
        )
    ndcg_floor = p_ndcg - config.ndcg_tolerance
    conv_floor = p_conv * (1.0 - config.snips_tolerance)
    passed = c_ndcg >= ndcg_floor and c_conv >= conv_floor
    return CheckOutcome(
        name="no_regression",
        passed=passed,
        value={"ndcg_at_5": round(c_ndcg, 4), "snips_conversion_yield": round(c_conv, 4)},
        threshold={"ndcg_at_5": round(ndcg_floor, 4), "snips_conversion_yield": round(conv_floor, 4)},
        detail=(
            f"NDCG@5 {c_ndcg:.4f} vs production {p_ndcg:.4f} (floor {ndcg_floor:.4f}); "
            f"SNIPS conversions per 1k impressions {c_conv:.3f} vs {p_conv:.3f} (floor {conv_floor:.3f})"
        ),
    )
