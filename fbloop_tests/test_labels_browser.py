"""A reviewer in headless Chromium: sign in, label, confirm, undo, label again, sign out; the store
agrees; then a guesser meets the sign-in throttle."""

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from fbloop_assets.lib.common.config import FbloopConfig, LabelingConfig
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_store
from fbloop_assets.lib.labeling.accounts import Accounts
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_assets.web.app import create_app
from fbloop_tests.labeling import PASSWORD, served_app
from fbloop_tests.tiny_world import write_tiny_day

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_chromium() -> None:
    """Skip without Debian's chromium, except under FBLOOP_REQUIRE_BROWSER=1 (CI), where it fails."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("FBLOOP_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"{CHROMIUM} is required (FBLOOP_REQUIRE_BROWSER=1): .ci/run installs Debian's chromium"
            )
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.mark.browser
def test_reviewer_labels_confirms_undoes_and_labels_again(lake: Lake, tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import expect, sync_playwright

    write_tiny_day(lake)
    store = LabelStore(open_store(f"sqlite:///{tmp_path / 'browser.sqlite'}"), ServedRecommendations(lake))
    Accounts(store.engine).add_reviewer("alice", "reviewer", PASSWORD)
    config = FbloopConfig(labeling=replace(LabelingConfig(), sign_in_failures_per_account=2))
    app = create_app(lake, config, "b" * 48, store=store, served=store.served)  # type: ignore[arg-type]
    shots = tmp_path / "shots"
    with served_app(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/queue")
        expect(page).to_have_url(f"{base}/login?next=/queue")
        page.screenshot(path=str(shots / "sign_in.png"), full_page=True)
        page.fill("#name", "alice")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{base}/queue")
        page.screenshot(path=str(shots / "queue.png"), full_page=True)
        rec = page.inner_text("#current-recommendation")
        assert rec == "rec-1"  # rank 1: the most exposed suggestion comes first

        # keyboard: U for useful, 5 for "certain", then Enter; Y confirms on the next page
        page.keyboard.press("u")
        page.keyboard.press("5")
        assert page.is_checked("#value-useful") and page.is_checked("#confidence-5")
        page.fill("#comment", "<b>right audience</b>")
        page.click("#review")
        expect(page.locator("#confirm-value")).to_have_text("Useful")
        expect(page.locator("#confirm-comment")).to_have_text("<b>right audience</b>")
        assert store.count_events() == {}  # nothing saved before confirming
        page.keyboard.press("y")
        expect(page.locator("#flash")).to_contain_text(f"Saved: Useful (certain) for {rec}")
        first = store.history("alice")
        assert [(h["recommendation_id"], h["label_value"], h["confidence"]) for h in first] == [
            (rec, "useful", 1.0)
        ]

        page.click("#undo")
        expect(page.locator("#flash")).to_contain_text("Undone")
        assert store.history("alice")[0]["retracted_at"] is not None
        assert page.inner_text("#current-recommendation") == rec  # back in the queue after undo

        page.check("#value-not-useful")
        page.check("#confidence-3")
        page.click("#review")
        page.click("#confirm")
        expect(page.locator("#flash")).to_contain_text("Saved: Not useful (fairly sure)")
        page.goto(f"{base}/history")
        expect(page.locator("#history tbody tr")).to_have_count(2)
        page.screenshot(path=str(shots / "history.png"), full_page=True)

        page.click("text=Sign out")
        expect(page).to_have_url(f"{base}/login")
        page.goto(f"{base}/history")  # signed out: the history is behind the sign-in page again
        expect(page).to_have_url(f"{base}/login?next=/history")
        for _ in range(3):  # two wrong guesses, then the throttle
            page.fill("#name", "alice")
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text(
            "Too many failed sign-ins for this name or from this address; try again in 15 minutes."
        )
        page.screenshot(path=str(shots / "throttled.png"), full_page=True)
        browser.close()

    history = store.history("alice")
    assert [(h["label_value"], h["confidence"], h["retracted_at"] is None) for h in history] == [
        ("not_useful", 0.6, True),
        ("useful", 1.0, False),
    ]
    assert store.count_events() == {"label": 2, "retraction": 1}
    assert all(
        (shots / f"{n}.png").stat().st_size > 1000 for n in ("sign_in", "queue", "history", "throttled")
    )
