"""The simulator's attacks: each injects what it claims, on its day only, deterministically per seed.

A run with an attack on one day is compared with the same seed's run without it: the attack's
random draws are its own, so everything it did not inject must be exactly as before.
"""

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.demo import served_exposure
from fbloop_assets.lib.ingest.day import read_raw
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.simulate import SimParams, Simulation
from fbloop_assets.simulate.attacks import attack_schedule, delay_conversions, parse_attacks
from fbloop_assets.simulate.params import ATTACKS
from fbloop_assets.simulate.run import write_manifest
from fbloop_assets.simulate.traffic import USEFUL_THRESHOLD, play_day
from fbloop_assets.simulate.world import make_world

START = date(2026, 3, 1)
SIGNALS = 6_000
ATTACK_DAY = 2
DAY = (START + timedelta(days=ATTACK_DAY)).isoformat()


def run(
    root: Path, days: int, attack_days: Mapping[str, tuple[int, ...]], seed: int = 5
) -> tuple[Simulation, dict]:
    params = replace(SimParams(), signals_per_day=SIGNALS, attack_days=attack_days)
    sim = Simulation(root, seed, START, params)
    per_day = {
        (START + timedelta(days=i)).isoformat(): sim.step(START + timedelta(days=i)) for i in range(days)
    }
    return sim, write_manifest(sim, per_day, SIGNALS)


def files_of(root: Path, day: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob(f"landing/*/{day}/*"))}


def good(root: Path, source: str, day: str) -> pl.DataFrame:
    """The day's delivered rows of ``source`` without the injected bad rows, typed where it matters."""
    id_col = "label_id" if source == "labels" else "signal_id"
    frames = [
        read_raw(p) for p in sorted((root / "landing" / source / day).glob("*")) if "partner" not in p.name
    ]
    frame = pl.concat([f.select(pl.all().cast(pl.String)) for f in frames], how="diagonal_relaxed").filter(
        ~pl.col(id_col).str.contains("-bad-")
    )
    return frame.unique(id_col, keep="first", maintain_order=True)


def served(root: Path) -> pl.DataFrame:
    logs = [read_raw(p) for p in sorted(root.glob("landing/recommendations/*/serving_log.jsonl"))]
    return (
        pl.concat(logs)
        .filter(~pl.col("recommendation_id").str.contains("-bad-") & pl.col("campaign_id").is_not_null())
        .unique("recommendation_id")
        .select(
            "recommendation_id",
            "campaign_id",
            "creator_id",
            pl.col("served_at").str.to_datetime(time_zone="UTC"),
        )
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Simulation, dict[str, Any], Path]]:
    out = {}
    for name, attack_days in (
        ("base", {}),
        ("burst", {"label-flood": (ATTACK_DAY,), "bot-spike": (ATTACK_DAY,)}),
        ("late", {"late-conversions": (ATTACK_DAY,)}),
    ):
        root = tmp_path_factory.mktemp(name)
        sim, manifest = run(root, 5, attack_days)
        out[name] = (sim, manifest, root)
    return out


def test_the_schedule_scales_with_the_run_and_names_are_checked() -> None:
    assert attack_schedule(ATTACKS, 60) == {
        "label-flood": (20, 21, 22, 40, 41, 42),
        "bot-spike": (27, 28, 29, 48, 49, 50),
        "late-conversions": tuple(range(24, 60)),
    }
    assert attack_schedule(["bot-spike"], 12) == {"bot-spike": (5, 6, 7, 10, 11)}  # cut at the run's end
    assert parse_attacks("late-conversions, label-flood") == ("label-flood", "late-conversions")
    with pytest.raises(ValueError, match="unknown attack 'bots'"):
        parse_attacks("label-flood,bots")
    with pytest.raises(ValueError, match="unknown attack"):
        SimParams(attack_days={"bots": (1,)})


def test_days_without_an_attack_are_delivered_as_if_there_were_none(runs: dict) -> None:
    base, burst, late = (runs[n][2] for n in ("base", "burst", "late"))
    for i in range(5):
        day = (START + timedelta(days=i)).isoformat()
        # flood and bought engagement arrive on their day only; late conversions move later days too
        assert (files_of(burst, day) == files_of(base, day)) is (i != ATTACK_DAY), day
        if i < ATTACK_DAY:
            assert files_of(late, day) == files_of(base, day), day
    assert "attacks" not in runs["base"][1] and not (base / "simulation/truth/attack_rows.parquet").exists()
    attacked = {d for d, entry in runs["burst"][1]["days"].items() if "attacks" in entry}
    assert attacked == {DAY} and runs["burst"][1]["attacks"]["days"]["label-flood"] == [DAY]


def test_label_flood_is_one_new_reviewer_labelling_against_the_truth(runs: dict) -> None:
    (_, _, base), (_, manifest, burst) = runs["base"], runs["burst"]
    record = manifest["days"][DAY]["attacks"]["label-flood"]
    normal, labels = good(base, "labels", DAY), good(burst, "labels", DAY)
    flood = labels.join(normal, on="label_id", how="anti")
    assert normal.join(labels, on="label_id", how="anti").height == 0  # the others' labels stay
    assert flood["reviewer_id"].unique().to_list() == ["rev-09"] == [record["reviewer_id"]]
    assert "rev-09" not in normal["reviewer_id"].to_list()
    assert flood.height == record["labels"] == math.ceil(1.5 * normal.height)
    assert flood.height / labels.height > 0.5
    assert flood.height > 5 * normal.height / 8  # several times a regular reviewer's volume
    recs = served(burst)
    truth = runs["burst"][0].world.pairs.select("campaign_id", "creator_id", "relevance")
    judged = flood.join(recs, on="recommendation_id").join(truth, on=["campaign_id", "creator_id"])
    assert judged.height == flood.height
    assert ((judged["label_value"] == "useful") == (judged["relevance"] <= USEFUL_THRESHOLD)).all()
    assert judged["label_value"].n_unique() == 2
    labeled_at = judged["labeled_at"].str.to_datetime(time_zone="UTC")
    assert (labeled_at > judged["served_at"]).all() and (
        labeled_at.dt.date() == date.fromisoformat(DAY)
    ).all()
    assert (judged["served_at"].dt.date() >= date.fromisoformat(DAY) - timedelta(days=1)).all()
    # every regular label of the suggestions served before the flood has arrived by the run's end
    others = pl.concat([good(base, "labels", d) for d in runs["base"][1]["days"]])["recommendation_id"]
    shared = flood["recommendation_id"].is_in(others.implode()).sum()
    assert shared == record["on_suggestions_others_label"] >= round(0.25 * flood.height) - 1 > 0


def test_bot_spike_multiplies_engagement_and_clicks_of_weak_creators_without_conversions(runs: dict) -> None:
    (_, _, base), (sim, manifest, burst) = runs["base"], runs["burst"]
    record = manifest["days"][DAY]["attacks"]["bot-spike"]
    normal, signals = good(base, "outcome_signals", DAY), good(burst, "outcome_signals", DAY)
    extra = signals.join(normal, on="signal_id", how="anti").join(served(burst), on="recommendation_id")
    assert normal.join(signals, on="signal_id", how="anti").height == 0
    assert set(extra["event_type"]) == {"engagement", "click"}  # no conversion comes with it
    assert set(extra["creator_id"]) <= set(record["creators"]) and len(record["creators"]) == 15
    assert (
        extra.filter(pl.col("event_type") == "engagement")["metric_value"].cast(float).sum()
        == (record["extra_engagements"])
    )
    assert record["extra_engagements"] / record["expected_engagements"] == pytest.approx(19, rel=0.02)
    assert record["extra_clicks"] / record["expected_clicks"] == pytest.approx(4, rel=0.1)
    # against what those creators' posts reported that day without the attack: many times over
    bought = served(base).filter(pl.col("creator_id").is_in(record["creators"]))
    usual = normal.join(bought, on="recommendation_id").filter(pl.col("event_type") == "engagement")
    assert record["extra_engagements"] > 10 * usual["metric_value"].cast(float).sum()
    # low-relevance creators: their suggestions' truth lies well below the day's average
    truth = sim.world.pairs.select("campaign_id", "creator_id", "relevance")
    recent = (
        served(burst)
        .filter(pl.col("served_at").dt.date() <= date.fromisoformat(DAY))
        .join(truth, on=["campaign_id", "creator_id"])
    )
    mine = recent.filter(pl.col("creator_id").is_in(record["creators"]))["relevance"].mean()
    assert mine < 0.6 * recent["relevance"].mean()  # type: ignore[operator]


def _conversions(sim: Simulation, root: Path, manifest: dict) -> pl.DataFrame:
    """Every conversion delivered or still pending, with its delay after serving in days."""
    delivered = pl.concat([good(root, "outcome_signals", d) for d in manifest["days"]]).filter(
        pl.col("event_type") == "conversion"
    )
    pending = [p.select(pl.all().cast(pl.String)) for s in sim.pending.values() for p in s["outcome_signals"]]
    every = pl.concat([delivered.select(pending[0].columns), *pending]).filter(
        pl.col("event_type") == "conversion"
    )
    return every.join(served(root), on="recommendation_id").select(
        "signal_id",
        pl.col("served_at").dt.date().alias("served_on"),
        (
            (pl.col("timestamp").str.to_datetime(time_zone="UTC") - pl.col("served_at")).dt.total_seconds()
            / 86_400
        ).alias("delay_days"),
    )


def test_late_conversions_move_the_days_conversions_past_their_window(runs: dict) -> None:
    (base_sim, base_manifest, base), (sim, manifest, late) = runs["base"], runs["late"]
    record = manifest["days"][DAY]["attacks"]["late-conversions"]
    before, after = _conversions(base_sim, base, base_manifest), _conversions(sim, late, manifest)
    day = date.fromisoformat(DAY)
    assert (
        after.filter(pl.col("served_on") != day)
        .sort("signal_id")
        .equals(before.filter(pl.col("served_on") != day).sort("signal_id"))
    )
    on_day = after.filter(pl.col("served_on") == day)
    assert on_day.height == before.filter(pl.col("served_on") == day).height == record["conversions"]
    moved = on_day.join(before.select("signal_id", pl.col("delay_days").alias("was")), on="signal_id").filter(
        pl.col("delay_days") != pl.col("was")
    )
    assert moved.height == record["delayed"]
    assert moved.height / on_day.height == pytest.approx(0.6, abs=0.05)
    assert moved["delay_days"].min() >= 3 and moved["delay_days"].max() <= 9  # type: ignore[operator]
    past = int((moved["delay_days"] > 7).sum())
    assert past == record["delayed_past_window"] and past / moved.height == pytest.approx(1 / 3, abs=0.06)
    assert before["delay_days"].max() < 7  # type: ignore[operator]
    rows = pl.read_parquet(late / "simulation/truth/attack_rows.parquet")
    assert sorted(rows["row_id"]) == sorted(moved["signal_id"])


def test_delay_conversions_changes_only_conversion_times() -> None:
    params = SimParams()
    world = make_world(params, 3, START)
    traffic = play_day(world, START, INITIAL, 20_000, params, np.random.default_rng(9))
    moved, record, rows = delay_conversions(
        traffic.signals, traffic.recommendations, params, np.random.default_rng(1), START
    )
    assert moved.drop("timestamp").equals(traffic.signals.drop("timestamp"))
    changed = moved["timestamp"] != traffic.signals["timestamp"]
    assert (traffic.signals.filter(changed)["event_type"] == "conversion").all()
    assert int(changed.sum()) == record["delayed"] == rows.height


def test_attacks_are_deterministic_per_seed(runs: dict, tmp_path: Path) -> None:
    attack_days = {"label-flood": (ATTACK_DAY,), "bot-spike": (ATTACK_DAY,)}
    _, again = run(tmp_path / "again", 3, attack_days)
    _, other = run(tmp_path / "other", 3, attack_days, seed=6)
    assert files_of(tmp_path / "again", DAY) == files_of(runs["burst"][2], DAY)
    assert again["days"][DAY]["attacks"] == runs["burst"][1]["days"][DAY]["attacks"]
    assert (
        other["days"][DAY]["attacks"]["bot-spike"]["creators"]
        != again["days"][DAY]["attacks"]["bot-spike"]["creators"]
    )


def test_demo_refuses_an_unknown_attack_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--attack", "label-flood,bots"]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "fbloop: error: unknown attack 'bots'; choose from label-flood, bot-spike, late-conversions"
    )


def test_demo_exposure_counts_the_creators_production_never_showed() -> None:
    served = pl.DataFrame({"creator_id": ["a", "a", "b", "a", "gone"]})
    catalog = pl.Series("creator_id", ["a", "b", "c", "d"])
    # exposures 3, 1, 0, 0: Gini = 2 (3·1 + 4·3) / (4·4) − 5/4 by hand; "gone" is not in the catalog
    assert served_exposure(served, catalog) == {"exposure_gini": 0.625, "catalog_coverage": 0.5}
