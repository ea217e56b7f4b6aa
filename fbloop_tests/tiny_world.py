"""A hand-written landing day, small enough to reason about row by row.

Independent of the simulator, so that pipeline tests pin exact counts: 2 creators, 1 campaign,
3 recommendations, 6 signals (1 malformed, 1 unknown recommendation, 1 conversion without
consent) and 3 labels (1 duplicate).
"""

from __future__ import annotations

from fbloop_assets.lib.common.lake import Lake
from fbloop_tests.conftest import write_landing

DAY = "2026-01-05"


def write_tiny_day(lake: Lake, day: str = DAY) -> None:
    _reference(lake, day)
    _serving_log(lake, day)
    _signals(lake, day)
    _labels(lake, day)


def _reference(lake: Lake, day: str) -> None:
    write_landing(
        lake,
        "creators",
        day,
        "creators.jsonl",
        [
            {
                "creator_id": "cre-1",
                "niche": "fitness",
                "platform": "instagram",
                "follower_count": 12000,
                "engagement_rate": 0.031,
                "audience_age_bucket": "18-25",
                "audience_country": "DE",
                "cost_per_post": 150.0,
                "posts_per_week": 4,
            },
            {
                "creator_id": "cre-2",
                "niche": "food",
                "platform": "tiktok",
                "follower_count": 560000,
                "engagement_rate": 0.012,
                "audience_age_bucket": "25-35",
                "audience_country": "FR",
                "cost_per_post": 4200.0,
                "posts_per_week": 6,
            },
        ],
    )
    write_landing(
        lake,
        "campaigns",
        day,
        "campaigns.csv",
        [
            {
                "campaign_id": "camp-1",
                "brand": "Acme Sport",
                "objective": "conversions",
                "target_niches": "fitness;food",
                "min_followers": 5000,
                "max_followers": 1000000,
                "target_age_buckets": "18-25;25-35",
                "target_countries": "DE;FR",
                "min_engagement_rate": 0.01,
                "cadence_posts_per_week": 2,
                "budget": 25000,
                "start_date": "2026-01-01",
                "end_date": "2026-02-28",
            },
        ],
    )


def _serving_log(lake: Lake, day: str) -> None:
    write_landing(
        lake,
        "recommendations",
        day,
        "serving_log.jsonl",
        [
            {
                "recommendation_id": f"rec-{i}",
                "request_id": "req-1",
                "campaign_id": "camp-1",
                "creator_id": creator,
                "rank": i,
                "score": 2.0 - i / 10,
                "propensity": p,
                "weights_version": "w0",
                "served_at": f"{day}T08:00:0{i}Z",
            }
            for i, creator, p in ((1, "cre-1", 0.6), (2, "cre-2", 0.5), (3, "cre-1", 0.2))
        ],
    )


def _signals(lake: Lake, day: str) -> None:
    signal = {
        "source": "platform_api",
        "event_type": "impression",
        "metric_value": "1200",
        "timestamp": f"{day}T20:00:00Z",
        "recommendation_id": "rec-1",
        "subject_id": "",
        "subject_age": "",
        "subject_country": "",
        "consent_analytics": "",
        "landing_url": "",
    }
    conversion = signal | {
        "source": "shop_pixel",
        "event_type": "conversion",
        "metric_value": "1",
        "subject_id": "CANARY-SUBJECT-1",
        "subject_age": "37",
        "subject_country": "DE",
        "consent_analytics": "true",
        "landing_url": "https://shop.example/CANARY-URL",
    }
    write_landing(
        lake,
        "outcome_signals",
        day,
        "signals.csv",
        [
            signal | {"signal_id": "s1"},
            signal
            | {
                "signal_id": "s2",
                "event_type": "engagement",
                "metric_value": "54",
                "recommendation_id": "rec-2",
            },
            signal | {"signal_id": "s3", "metric_value": "lots"},
            signal | {"signal_id": "s4", "recommendation_id": "rec-nowhere"},
            conversion | {"signal_id": "s5"},
            conversion | {"signal_id": "s6", "subject_id": "u-2", "consent_analytics": "false"},
        ],
    )


def _labels(lake: Lake, day: str) -> None:
    label = {
        "reviewer_id": "rev-1",
        "recommendation_id": "rec-1",
        "label_value": "useful",
        "confidence": "0.9",
        "labeled_at": f"{day}T21:00:00Z",
        "comment": "CANARY-TEXT loved it",
    }
    write_landing(
        lake,
        "labels",
        day,
        "labels.csv",
        [
            label | {"label_id": "l1"},
            label | {"label_id": "l2", "reviewer_id": "rev-2", "label_value": "not_useful", "comment": ""},
            label | {"label_id": "l1"},
        ],
    )
