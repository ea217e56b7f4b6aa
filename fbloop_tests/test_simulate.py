"""The synthetic world: deterministic, honest about what it delivered, and shaped like the docs say."""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fbloop_assets.lib.ingest.day import read_raw
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.simulate import SimParams, simulate
from fbloop_assets.simulate.traffic import play_day
from fbloop_assets.simulate.world import make_world

START = date(2026, 3, 1)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        simulate(tmp_path / name, days=2, seed=seed, start=START, signals_per_day=3_000)
    a, b, c = (files_of(tmp_path / n / "landing") for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_manifest_counts_match_the_delivered_files(tmp_path: Path) -> None:
    manifest = simulate(tmp_path, days=3, seed=5, start=START, signals_per_day=3_000)
    for day, delivered in manifest["days"].items():
        for source in ("creators", "campaigns", "recommendations", "outcome_signals", "labels"):
            entry = delivered[source]
            rows = sum(read_raw(tmp_path / f).height for f in entry["files"])
            assert rows == entry["rows"] == entry["good"] + sum(entry["bad"].values()), (day, source)
        bad_files = [b["file"] for b in delivered["bad_files"]]
        assert bad_files == (
            ["landing/outcome_signals/2026-03-02/partner_feed.parquet"] if day == "2026-03-02" else []
        )
    assert manifest["pending_after_range"]["outcome_signals"] > 0  # late conversions beyond the last day


def test_signals_per_day_sizes_the_steady_traffic(tmp_path: Path) -> None:
    manifest = simulate(tmp_path, days=4, seed=5, start=START, signals_per_day=10_000)
    # day 1 only sees its own early reports; from day 3 on, late arrivals fill the day up
    assert 7_000 < manifest["days"]["2026-03-04"]["outcome_signals"]["rows"] < 13_000


@pytest.fixture(scope="module")
def big_day() -> tuple:
    params = SimParams()
    world = make_world(params, 3, START)
    traffic = play_day(world, START, INITIAL, 20_000, params, np.random.default_rng(9))
    return params, world, traffic


def test_conversions_arrive_within_seven_days_of_serving(big_day: tuple) -> None:
    _, _, traffic = big_day
    conversions = traffic.signals.filter(pl.col("event_type") == "conversion").join(
        traffic.recommendations.select("recommendation_id", "served_at"), on="recommendation_id"
    )
    delay = (conversions["timestamp"] - conversions["served_at"]).dt.total_seconds() / 86_400
    assert delay.min() > 0 and delay.max() < 7
    assert 0.3 < (delay < 2).mean() < 0.9  # most on the first days, a long tail to a week
    assert (delay > 5).sum() > 0


def test_bought_followers_inflate_engagement_but_convert_badly(big_day: tuple) -> None:
    _, world, traffic = big_day
    per_rec = (
        traffic.signals.group_by("recommendation_id", "event_type")
        .agg(pl.col("metric_value").sum())
        .pivot("event_type", index="recommendation_id", values="metric_value")
        .fill_null(0)
        .join(traffic.recommendations.select("recommendation_id", "creator_id"), on="recommendation_id")
        .join(world.creator_truth, on="creator_id")
        .join(world.creators.select("creator_id", "engagement_rate"), on="creator_id")
    )
    by_kind = (
        per_rec.group_by("bought_followers")
        .agg(
            pl.col("engagement_rate").median(),
            (pl.col("conversion").sum() / pl.col("click").sum()).alias("conversions_per_click"),
        )
        .sort("bought_followers")
    )
    honest, bought = by_kind.rows(named=True)
    assert bought["engagement_rate"] > honest["engagement_rate"]
    assert bought["conversions_per_click"] < 0.5 * honest["conversions_per_click"]


def test_reviewer_labels_are_informative_but_noisy(big_day: tuple) -> None:
    params, _, traffic = big_day
    labels = traffic.labels.join(
        traffic.recommendations.select("recommendation_id", "creator_id", "campaign_id"),
        on="recommendation_id",
    )
    # the truth of each labelled pair, through the world's pairs
    truth = make_world(params, 3, START).pairs.select("campaign_id", "creator_id", "relevance")
    judged = labels.join(truth, on=["campaign_id", "creator_id"])
    agreement = ((judged["label_value"] == "useful") == (judged["relevance"] > 0.35)).mean()
    assert 0.65 < agreement < 0.97
    twice = labels.group_by("recommendation_id").len().filter(pl.col("len") == 2).height
    assert 0.10 < twice / labels["recommendation_id"].n_unique() < 0.20
    assert labels["reviewer_id"].n_unique() == params.n_reviewers


def test_consent_shares_follow_the_parameters(big_day: tuple) -> None:
    params, _, traffic = big_day
    consent = traffic.signals.filter(pl.col("subject_id").is_not_null())["consent_analytics"]
    shares = (consent.fill_null(False).mean(), (consent == False).mean(), consent.is_null().mean())  # noqa: E712
    for got, wanted in zip(shares, params.consent_shares, strict=True):
        assert got == pytest.approx(wanted, abs=0.02)


def test_the_days_before_a_campaign_starts_have_no_slates_for_it(tmp_path: Path) -> None:
    params = SimParams()
    world = make_world(params, 3, START)
    early = world.campaigns["start_date"].max()
    traffic = play_day(world, early - timedelta(days=1), INITIAL, 500, params, np.random.default_rng(0))
    late_starters = world.campaigns.filter(pl.col("start_date") == early)["campaign_id"]
    assert not traffic.recommendations["campaign_id"].is_in(late_starters.implode()).any()
