"""Run the synthetic world day by day and deliver its files into the landing zone.

A `Simulation` holds the world and the events that have not arrived yet. Each `step` delivers
the day's reference snapshots, has the day's suggestion requests served (by the closed loop's
server, which uses the production weights, or else with the hand-set weights), files every
resulting event under the UTC day it arrives, and delivers the day's serving log, platform
reports, shop conversions and reviewer labels, each with its injected bad rows, and on attack
days (``SimParams.attack_days``) the rows of the attacks (`attacks`). `simulate` runs the steps
with the hand-set weights and writes the truth and a manifest of exactly what was delivered,
which tests compare with what the pipeline kept.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fbloop_assets.lib.common.lake import Lake, atomic_path, write_parquet
from fbloop_assets.lib.ingest.day import day_bounds
from fbloop_assets.lib.ingest.landing import Reason
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_assets.simulate.attacks import (
    ATTACK_ROW_SCHEMA,
    BOT_SPIKE,
    LABEL_FLOOD,
    LATE_CONVERSIONS,
    attacks_on,
    bought_engagement,
    days_by_attack,
    delay_conversions,
    episode,
    flood_labels,
    flood_size,
    pick_bot_creators,
    reviewer_for,
    with_truth,
)
from fbloop_assets.simulate.defects import with_bad_rows
from fbloop_assets.simulate.params import SimParams
from fbloop_assets.simulate.traffic import day_requests, respond, serve_with_world
from fbloop_assets.simulate.world import World, make_world

EVENT_TIME = {"outcome_signals": "timestamp", "labels": "labeled_at"}
# What the simulator delivers each day, (source, file); a re-run replaces exactly these files.
DELIVERIES = (
    ("creators", "creators.parquet"),
    ("campaigns", "campaigns.jsonl"),
    ("recommendations", "serving_log.jsonl"),
    ("outcome_signals", "platform_api.parquet"),
    ("outcome_signals", "shop_pixel.csv"),
    ("labels", "labels.csv"),
)
UNPARSEABLE = "partner_feed.parquet"

CANARY = "CANARY"

# Answers one day's requests: (day, requests) -> (served rows, serving-log files written).
Server = Callable[[date, pl.DataFrame], tuple[pl.DataFrame, list[Path]]]


def simulation_dir(data_dir: Path) -> Path:
    """Where the simulator keeps truth and manifest: never read by the pipeline."""
    return data_dir / "simulation"


def _write_text(frame: pl.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        if target.suffix == ".csv":
            frame.write_csv(tmp)
        else:
            frame.write_ndjson(tmp)


class Simulation:
    """The world of one seed, advanced one day at a time."""

    def __init__(self, data_dir: Path, seed: int, start: date, params: SimParams | None = None) -> None:
        self.lake = Lake(data_dir)
        self.seed = seed
        self.params = params or SimParams()
        self.world: World = make_world(self.params, seed, start)
        self.pending: dict[date, dict[str, list[pl.DataFrame]]] = defaultdict(lambda: defaultdict(list))
        self.start = start
        # For attacks only: the suggestions of the last two serving days with their relevance,
        # the creators each bot-spike episode buys engagement for, and the rows injected so far.
        self.recent: list[pl.DataFrame] = []
        self.bot_creators: dict[int, list[str]] = {}
        self.attack_rows: list[pl.DataFrame] = []

    def _rng(self, stream: int, day: date, *more: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream, day.toordinal(), *more])

    def step(self, day: date, server: Server | None = None) -> dict[str, Any]:
        """Deliver ``day``: reference data, the served slates, and every event arriving on ``day``.

        ``server`` answers the day's suggestion requests (request_id, campaign_id, served_at)
        after the reference snapshots have landed, and logs what it served itself; it returns
        the served rows and the serving-log files it wrote. Without one the simulator serves the
        hand-set weights through fbloop's suggestion code and writes ``serving_log.jsonl``.
        """
        params = self.params
        rng = self._rng(1, day)
        n_recs = max(params.slate_size, round(params.signals_per_day / params.signal_rows_per_recommendation))
        manifest: dict[str, Any] = {}
        self._clear(day)
        for source, name in DELIVERIES[:2]:
            frame = self.world.creators if source == "creators" else self.world.campaigns
            self._deliver_file(day, source, name, frame, manifest)
        requests = day_requests(self.world, day, n_recs, params, rng)
        if server is None:
            served = serve_with_world(self.world, requests, INITIAL, params, rng)
            self._deliver_file(day, "recommendations", "serving_log.jsonl", served, manifest)
        else:
            served, files = server(day, requests)
            manifest["recommendations"] = {
                "files": [self.lake.relative(f) for f in files],
                "rows": served.height,
                "good": served.height,
                "bad": {},
            }
        traffic = respond(self.world, served, params, rng)
        index = (day - self.start).days
        staged = attacks_on(params, index)
        injected: dict[str, Any] = {}
        caused = traffic.signals
        if LATE_CONVERSIONS in staged:
            caused, injected[LATE_CONVERSIONS], rows = delay_conversions(
                caused, served, params, self._rng(10, day), day
            )
            self.attack_rows.append(rows)
        for source, frame in (("outcome_signals", caused), ("labels", traffic.labels)):
            arrival = frame.get_column(EVENT_TIME[source]).dt.date()
            for (arrives,), part in (
                frame.with_columns(arrival.alias("_day"))
                .partition_by("_day", as_dict=True, include_key=False)
                .items()
            ):
                self.pending[arrives][source].append(part)
        arrived = self.pending.pop(day, {})
        signals = _concat(arrived.get("outcome_signals"), traffic.signals)
        labels = _concat(arrived.get("labels"), traffic.labels)
        if params.attack_days:
            signals, labels = self._stage(day, index, served, traffic.labels, signals, labels, injected)
        self._deliver_outcomes(day, signals, labels, manifest)
        if injected:
            manifest["attacks"] = injected
        return manifest

    def _stage(
        self,
        day: date,
        index: int,
        served: pl.DataFrame,
        own_labels: pl.DataFrame,
        signals: pl.DataFrame,
        labels: pl.DataFrame,
        injected: dict[str, Any],
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Add the day's bought engagement and label flood to what arrives on ``day``."""
        params = self.params
        labeled = pl.col("recommendation_id").is_in(own_labels["recommendation_id"].implode())
        self.recent = [
            *self.recent[-1:],
            with_truth(self.world, served).with_columns(labeled.alias("labeled")),
        ]
        recent = pl.concat(self.recent)
        staged = attacks_on(params, index)
        if BOT_SPIKE in staged:
            first, _ = episode(params.attack_days[BOT_SPIKE], index)
            if first not in self.bot_creators:
                rng = self._rng(11, self.start + timedelta(days=first))
                self.bot_creators[first] = pick_bot_creators(recent, params.attack.bot_creators, rng)
            extra, injected[BOT_SPIKE], rows = bought_engagement(
                recent, self.world, day, self.bot_creators[first], params, self._rng(12, day)
            )
            signals = pl.concat([signals, extra])
            self.attack_rows.append(rows)
        if LABEL_FLOOD in staged:
            _, number = episode(params.attack_days[LABEL_FLOOD], index)
            count = flood_size(labels.height, params.attack.label_flood_share)
            flood, record, rows = flood_labels(
                recent,
                recent.filter("labeled")["recommendation_id"],
                day,
                count,
                reviewer_for(params, number),
                params,
                self._rng(13, day),
            )
            total = labels.height + flood.height
            record["share_of_day"] = round(flood.height / total, 4) if total else 0.0
            per_reviewer = labels.height / params.n_reviewers
            record["times_a_reviewer_volume"] = (
                round(flood.height / per_reviewer, 2) if per_reviewer else None
            )
            injected[LABEL_FLOOD] = record
            labels = pl.concat([labels, flood]).sort("labeled_at", "label_id")
            self.attack_rows.append(rows)
        return signals, labels

    def pending_after(self, last_day: date) -> dict[str, int]:
        """Events drawn but arriving after ``last_day``: not delivered, not in any count."""
        counts: dict[str, int] = defaultdict(int)
        for day, sources in self.pending.items():
            if day > last_day:
                for source, parts in sources.items():
                    counts[source] += sum(p.height for p in parts)
        return dict(sorted(counts.items()))

    def _clear(self, day: date) -> None:
        """Remove what an earlier run delivered for ``day``, so a re-run replaces it exactly."""
        for source, name in (*DELIVERIES, ("outcome_signals", UNPARSEABLE)):
            (self.lake.landing_dir(source, day) / name).unlink(missing_ok=True)

    def _deliver_file(
        self, day: date, source: str, name: str, good: pl.DataFrame, manifest: dict[str, Any]
    ) -> None:
        """Write ``good`` rows plus injected bad rows to the landing zone; count them in ``manifest``."""
        _, day_end = day_bounds(day)
        target = self.lake.landing_dir(source, day) / name
        text = target.suffix != ".parquet"
        rows, bad = with_bad_rows(
            good,
            source,
            day_end,
            text,
            self.params.bad_row_share,
            self._rng(2, day, zlib.crc32(name.encode())),
        )
        if text:
            _write_text(rows, target)
        else:
            write_parquet(rows, target)
        entry = manifest.setdefault(source, {"files": [], "rows": 0, "good": 0, "bad": {}})
        entry["files"].append(self.lake.relative(target))
        entry["rows"] += rows.height
        entry["good"] += good.height
        for reason, n in bad.items():
            entry["bad"][reason] = entry["bad"].get(reason, 0) + n

    def _deliver_outcomes(
        self, day: date, signals: pl.DataFrame, labels: pl.DataFrame, manifest: dict[str, Any]
    ) -> None:
        signals, labels, canaries = self._plant_canaries(day, signals, labels, self._rng(3, day))
        self._deliver_file(
            day,
            "outcome_signals",
            "platform_api.parquet",
            signals.filter(pl.col("source") == "platform_api"),
            manifest,
        )
        self._deliver_file(
            day,
            "outcome_signals",
            "shop_pixel.csv",
            signals.filter(pl.col("source") != "platform_api"),
            manifest,
        )
        self._deliver_file(day, "labels", "labels.csv", labels, manifest)
        lacks_consent = pl.col("subject_id").is_not_null() & ~pl.col("consent_analytics").fill_null(False)
        manifest["outcome_signals"]["good_without_consent"] = signals.filter(lacks_consent).height
        manifest["outcome_signals"]["by_event_type"] = dict(
            sorted(signals.group_by("event_type").len().iter_rows())
        )
        manifest["bad_files"] = []
        if (day - self.start).days == self.params.unparseable_file_day:
            target = self.lake.landing_dir("outcome_signals", day) / UNPARSEABLE
            with atomic_path(target) as tmp:
                # a partner's export cut off mid-write: no Parquet reader can open it (a text file
                # cut off mid-line would lose only its last line)
                feed = pl.DataFrame({"signal_id": [f"pf-{i}" for i in range(100)], "metric_value": 3.0})
                feed.write_parquet(tmp)
                tmp.write_bytes(tmp.read_bytes()[:256])
            manifest["bad_files"].append(
                {
                    "source": "outcome_signals",
                    "file": self.lake.relative(target),
                    "reason": str(Reason.UNPARSEABLE_FILE),
                }
            )
        manifest["canaries"] = canaries

    def _plant_canaries(
        self, day: date, signals: pl.DataFrame, labels: pl.DataFrame, rng: np.random.Generator
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, list[str]]]:
        """Mark a few consented conversions and labels with values a privacy scan can find."""
        n = self.params.canaries_per_day
        tag = day.strftime("%Y%m%d")
        consented = np.flatnonzero(
            (signals["subject_id"].is_not_null() & signals["consent_analytics"].fill_null(False)).to_numpy()
        )
        rows = np.sort(rng.choice(consented, size=min(n, consented.size), replace=False))
        subjects = [f"{CANARY}-SUBJECT-{tag}-{i}" for i in range(1, rows.size + 1)]
        urls = [f"https://shop.example/{CANARY}-URL-{tag}-{i}" for i in range(1, rows.size + 1)]
        signals = signals.with_columns(
            signals["subject_id"].scatter(rows, subjects), signals["landing_url"].scatter(rows, urls)
        )
        picked = np.sort(rng.choice(labels.height, size=min(n, labels.height), replace=False))
        comments = [f"{CANARY}-TEXT-{tag}-{i}: call me on +49 30 1234567" for i in range(1, picked.size + 1)]
        labels = labels.with_columns(labels["comment"].scatter(picked, comments))
        return signals, labels, {"subject_ids": subjects, "landing_urls": urls, "comments": comments}

    def write_truth(self) -> dict[str, str]:
        """The hidden truth, for evaluation reports only."""
        folder = simulation_dir(self.lake.root) / "truth"
        relevance = write_parquet(self.world.pairs, folder / "relevance.parquet")
        creators = write_parquet(self.world.creator_truth, folder / "creators.parquet")
        truth = {"relevance": self.lake.relative(relevance), "creators": self.lake.relative(creators)}
        if self.params.attack_days:
            rows = pl.concat(self.attack_rows) if self.attack_rows else ATTACK_ROW_SCHEMA.to_frame()
            truth["attack_rows"] = self.lake.relative(write_parquet(rows, folder / "attack_rows.parquet"))
        return truth


def _concat(earlier: list[pl.DataFrame] | None, like: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(earlier) if earlier else like.clear()


def simulate(
    data_dir: Path,
    *,
    days: int,
    seed: int,
    start: date = date(2026, 1, 1),
    signals_per_day: int = 20_000,
    progress: Callable[[str], None] | None = None,
    params: SimParams | None = None,
) -> dict[str, Any]:
    """Simulate ``days`` days from ``start`` into ``data_dir``; return (and write) the manifest."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    params = replace(params or SimParams(), signals_per_day=signals_per_day)
    sim = Simulation(data_dir, seed, start, params)
    per_day: dict[str, Any] = {}
    for i in range(days):
        day = start + timedelta(days=i)
        per_day[day.isoformat()] = sim.step(day)
        if progress:
            s = per_day[day.isoformat()]
            progress(
                f"simulated {day} ({i + 1}/{days}): {s['recommendations']['rows']:,} recommendations, "
                f"{s['outcome_signals']['rows']:,} signals, {s['labels']['rows']:,} labels"
            )
    return write_manifest(sim, per_day, signals_per_day)


def write_manifest(sim: Simulation, per_day: dict[str, Any], signals_per_day: int) -> dict[str, Any]:
    """Write the truth and ``simulation/manifest.json`` for the days simulated so far; return it."""
    last = max(date.fromisoformat(d) for d in per_day)
    params = asdict(sim.params)
    # Reported under "attacks" when staged, so that the documented world's manifest stays as it was.
    params.pop("attack_days")
    attack = params.pop("attack")
    manifest: dict[str, Any] = {
        "seed": sim.seed,
        "start": sim.start.isoformat(),
        "n_days": len(per_day),
        "signals_per_day": signals_per_day,
        "params": params,
        "days": per_day,
        "pending_after_range": sim.pending_after(last),
        "truth": sim.write_truth(),
    }
    if sim.params.attack_days:
        manifest["attacks"] = {"days": days_by_attack(sim.params, sim.start), "params": attack}
    target = simulation_dir(sim.lake.root) / "manifest.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest
