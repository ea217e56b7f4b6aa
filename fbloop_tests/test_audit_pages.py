"""The `/audit` pages on a real closed loop: they show what `fbloop audit --json` prints, and a
reviewer and an analyst walk their paths in headless Chromium, leaving a screenshot of every page
type (in ``$FBLOOP_SCREENSHOTS``, e.g. ``docs/screenshots``, or the test's temporary folder)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from starlette.testclient import TestClient

from fbloop_assets.cli import main
from fbloop_assets.demo import run_demo
from fbloop_assets.lib.common.config import load_config
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.weights.registry import Registry
from fbloop_assets.lineage import InstanceEventLog
from fbloop_assets.web.app import create_app
from fbloop_tests.conftest import TEST_KEY_HEX
from fbloop_tests.labeling import PASSWORD, SECRET, served_app, token_of
from fbloop_tests.test_audit import CONFIG  # the same small loop as the CLI audit test
from fbloop_tests.test_labels_browser import CHROMIUM, FLAGS, _require_chromium


@dataclass
class World:
    lake: Lake
    instance: dg.DagsterInstance
    config_path: Path
    version: str  # a weights version the loop trained, evaluated and moved an alias to

    def app(self):  # type: ignore[no-untyped-def]
        config = load_config(self.config_path)
        return create_app(self.lake, config, SECRET, events=InstanceEventLog(self.instance))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("audit_world")
    (root / "fbloop.toml").write_text(CONFIG)
    lake = Lake(root / "data")
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as instance:
        mp.setenv("FBLOOP_PSEUDONYM_KEY", TEST_KEY_HEX)
        mp.setenv("FBLOOP_DATA_DIR", str(lake.root))  # the loop's resources read it at run time
        mp.setenv("FBLOOP_CONFIG", str(root / "fbloop.toml"))
        config = load_config(root / "fbloop.toml")
        run_demo(
            lake.root,
            config,
            days=5,
            seed=11,
            start=date(2026, 1, 1),
            signals_per_day=3000,
            instance=instance,
            progress=lambda _: None,
        )
        registry = Registry.of(lake)
        evaluated = [
            v.version for v in registry.versions() if v.dataset_version and registry.evaluations(v.version)
        ]
        assert evaluated, "the loop evaluated no candidate: the world is too small"
        version = evaluated[-1]
        if not registry.moves_of(version):  # an analyst's audit also shows a person's forced move
            registry.move("staging", version, "staged by hand to try it", actor="ana", forced=True)
        accounts = Accounts(open_data_store(lake.root))
        accounts.add_reviewer("rita", "reviewer", PASSWORD)
        accounts.add_reviewer("ana", "analyst", PASSWORD)
        yield World(lake, instance, root / "fbloop.toml", version)


@pytest.fixture
def in_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("FBLOOP_DATA_DIR", str(world.lake.root))
    monkeypatch.setenv("FBLOOP_CONFIG", str(world.config_path))
    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(lambda: world.instance))
    return world


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_audit_pages_show_what_fbloop_audit_json_prints(
    in_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(in_world.app()) as client:
        page = client.get("/login")
        data = {"name": "ana", "password": PASSWORD, "csrf_token": token_of(page.text), "next": "/audit"}
        assert client.post("/login", data=data).status_code == 200
        version = in_world.version
        printed = _cli(["audit", "weights", version, "--json"], capsys)
        served = client.get(f"/audit/weights/{version}?format=json")
        assert served.text == printed  # one function, one serialization
        report = json.loads(printed)
        html = client.get(f"/audit/weights/{version}").text
        dataset = report["dataset"]
        for p in dataset["partitions"]:
            assert p["run_id"] and p["run_id"][:8] in html
        for reviewer, n in dataset["labels_by_reviewer"].items():
            assert f'<td>{reviewer}</td><td class="n">{n:,}</td>' in html
        for source, n in dataset["signals_by_source_and_type"].items():
            assert f'<td>{source}</td><td class="n">{n:,}</td>' in html
        checks = [c for e in report["evaluations"] for c in e["checks"]]
        assert checks and all(f"<strong>{c['name']}</strong>" in html for c in checks)
        assert "ndcg_at_5_floor" in html  # thresholds are shown beside the values
        assert all(m["reason"] in html for m in report["alias_moves"])

        label = dataset["label_ids"][0]
        assert client.get(f"/audit/label/{label}?format=json").text == _cli(
            ["audit", "label", label, "--json"], capsys
        )
        assert version in client.get(f"/audit/label/{label}").text
        day = dataset["partitions"][0]["partition"]
        assert client.get(f"/audit/day/{day}?format=json").text == _cli(
            ["audit", "partition", day, "--json"], capsys
        )
        assert dataset["version"] in client.get(f"/audit/day/{day}").text

        effect = client.get("/audit/effect?format=json").json()
        quarantine = pl.read_parquet(in_world.lake.table_path("quarantine", date(2026, 1, 2)))
        second = next(d for d in effect["days"] if d["day"] == "2026-01-02")
        assert sum(second["ingestion"]["quarantined"].values()) == quarantine.height
        assert second["ingestion"]["consent_excluded"] > 0
        history = Registry.of(in_world.lake).history("canary")
        assert [s["version"] for s in effect["canary"]] == [m.to_version for m in history if m.to_version]


def _shots() -> Path | None:
    folder = os.environ.get("FBLOOP_SCREENSHOTS")
    return Path(folder) if folder else None


@dataclass
class Walk:
    """A browser page on the served app, signing in and saving full-page screenshots."""

    page: Any  # playwright's sync Page (imported only once Chromium is known to be there)
    base: str
    shots: Path

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def sign_in(self, name: str) -> None:
        page = self.page
        page.goto(f"{self.base}/login")
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")


def _reviewer(walk: Walk, brands: set[str]) -> None:
    """The priority in words, a label with its confidence in words, history by name; no audits."""
    from playwright.sync_api import Page, expect

    page, base = walk.page, walk.base
    assert isinstance(page, Page)
    walk.sign_in("rita")
    expect(page).to_have_url(f"{base}/queue")
    expect(page.locator("#priority")).to_contain_text("Shown in slot")
    expect(page.locator("#priority")).not_to_contain_text("0.00")
    expect(page.locator("#why")).not_to_be_empty()
    assert not page.is_checked("#confidence-4")  # nothing is chosen for the reviewer
    walk.shot("queue")
    page.keyboard.press("u")
    page.keyboard.press("4")
    page.click("#review")
    expect(page.locator("#confirm-confidence")).to_have_text("sure")
    walk.shot("confirm")
    page.keyboard.press("y")
    expect(page.locator("#flash")).to_contain_text("Saved: Useful (sure)")
    page.goto(f"{base}/history")
    row = page.locator("#history tbody tr").first
    assert any(b in row.inner_text() for b in brands)  # the campaign by its brand, not an id
    expect(row).to_contain_text("sure")
    walk.shot("history")
    refused = page.goto(f"{base}/audit")
    assert refused is not None and refused.status == 403
    page.click("button:has-text('Sign out')")


def _analyst(walk: Walk, version: str) -> None:
    """The audit pages, one of each kind, and the effect charts drawn; never the queue."""
    from playwright.sync_api import Page, expect

    page, base = walk.page, walk.base
    assert isinstance(page, Page)
    walk.sign_in("ana")
    expect(page).to_have_url(f"{base}/audit")
    walk.shot("audit_index")
    page.click(f"#versions-table a:has-text('{version}')")
    expect(page.locator("#subject")).to_have_text(version)
    expect(page.locator("#partitions")).to_be_visible()
    expect(page.locator("#alias-moves")).to_contain_text("staging")
    walk.shot("audit_weights")
    page.locator("a[href^='/audit/label/']").first.click()
    expect(page.locator("#datasets")).to_be_visible()
    expect(page.locator("body")).to_contain_text(version)
    walk.shot("audit_label")
    page.go_back()
    page.locator("#partitions a[href^='/audit/day/']").first.click()
    expect(page.locator("h1")).to_contain_text("What the data of")
    walk.shot("audit_day")
    page.goto(f"{base}/audit/effect")
    for chart in ("timeline", "offline", "canary", "ingestion"):
        image = page.locator(f"#chart-{chart}")
        expect(image).to_be_visible()
        assert image.evaluate("i => i.complete && i.naturalWidth > 0"), chart  # served and drawn
    expect(page.locator("#effect-days")).to_contain_text("2026-01-05")
    walk.shot("audit_effect")
    refused = page.goto(f"{base}/queue")
    assert refused is not None and refused.status == 403
    expect(page.locator("#message")).to_contain_text("analyst account reads the audit pages")


@pytest.mark.slow
@pytest.mark.browser
def test_a_reviewer_and_an_analyst_walk_their_paths(in_world: World, tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    shots = _shots() or tmp_path / "shots"
    campaigns = pl.read_parquet(in_world.lake.table_path("campaigns", date(2026, 1, 5)))
    with served_app(in_world.app()) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        walk = Walk(browser.new_page(viewport={"width": 1200, "height": 900}), base, shots)
        _reviewer(walk, set(campaigns["brand"].to_list()))
        _analyst(walk, in_world.version)
        browser.close()
    pages = {"queue", "confirm", "history", "audit_index", "audit_weights", "audit_label", "audit_day"}
    assert {p.stem for p in shots.glob("*.png")} >= pages | {"audit_effect"}
