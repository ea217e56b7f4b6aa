"""The review queue reads a validated serving log: bad rows are skipped and counted, future days ignored."""

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.labeling.served import ServedRecommendations
from fbloop_assets.lib.labeling.store import LabelStore
from fbloop_tests.conftest import write_landing
from fbloop_tests.labeling import Clock, api_sign_in, sign_in, web_client, web_store, write_served

TODAY = datetime(2026, 1, 6, 12, tzinfo=UTC)


def _row(rec: str, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "recommendation_id": rec,
        "request_id": "req-bad",
        "campaign_id": "camp-1",
        "creator_id": "cre-1",
        "rank": 1,
        "score": 1.0,
        "propensity": 0.01,  # the most uncertain picks: they would lead the queue
        "weights_version": "w0",
        "served_at": "2026-01-05T09:00:00Z",
    }
    return row | changes


def _write_hostile_log(lake: Lake) -> None:
    rows = [
        _row("rec-no-rank", rank=""),
        _row("rec-odd-rank", rank="first"),
        _row("rec-rank-0", rank=0),
        _row("rec-sure", propensity=1.5),
        _row("rec-no-campaign", campaign_id=None),
        *[_row(f"rec-2099-{m}", served_at=f"2099-0{m}-01T09:00:00Z") for m in range(1, 8)],
    ]
    write_landing(lake, "recommendations", "2026-01-05", "hostile.jsonl", rows)
    broken = lake.root / "landing" / "recommendations" / "2026-01-05" / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")


EXPECTED = {
    "missing_field": 2,  # the blank rank, the missing campaign
    "malformed_value": 1,
    "invalid_value": 2,
    "future_timestamp": 7,
    "unparseable_file": 1,
}


@pytest.fixture
def clock() -> Clock:
    return Clock(TODAY)


@pytest.fixture
def store(lake: Lake, tmp_path: Path, clock: Clock) -> LabelStore:
    return web_store(lake, tmp_path / "web.sqlite", clock)


def test_invalid_rows_are_skipped_counted_and_logged(
    lake: Lake, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    write_served(lake, 30)
    _write_hostile_log(lake)
    served = ServedRecommendations(lake, clock)
    with caplog.at_level(logging.WARNING, logger="fbloop.labeling"):
        assert served.rows().height == 30
    assert served.invalid() == EXPECTED
    assert "rec-no-rank" not in served and "rec-2099-1" not in served and "rec-00001" in served
    assert (
        "serving log: skipped invalid rows (7 future_timestamp, 2 invalid_value, 1 malformed_value, "
        "2 missing_field, 1 unparseable_file)"
    ) in caplog.text
    assert "cannot read" in caplog.text and "broken.parquet" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fbloop.labeling"):
        served.rows()  # nothing changed: not read (nor logged) again
    assert caplog.text == ""


def test_one_malformed_row_no_longer_breaks_the_queue_for_everyone(lake: Lake, store: LabelStore) -> None:
    _write_hostile_log(lake)
    for name in ("alice", "bob"):
        with web_client(lake, store) as client:
            sign_in(client, name)
            assert client.get("/queue").status_code == 200
            items = client.get("/api/queue", params={"limit": 200}).json()["items"]
            assert len(items) == 30 and all(i["recommendation_id"].startswith("rec-0") for i in items)
    with web_client(lake, store) as admin:
        sign_in(admin, "root")
        page = admin.get("/admin").text
        assert (
            "skips as invalid: 7 future_timestamp, 2 invalid_value, 1 malformed_value, 2 missing_field, "
            "1 unparseable_file (the daily run quarantines them"
        ) in page


def test_rows_dated_after_today_do_not_take_over_the_queue(
    lake: Lake, store: LabelStore, clock: Clock
) -> None:
    write_landing(
        lake,
        "recommendations",
        "2026-01-05",
        "tomorrow.jsonl",
        [_row("rec-tomorrow", served_at="2026-01-07T08:00:00Z")],
    )
    with web_client(lake, store) as client:
        api_sign_in(client)
        ids = [
            i["recommendation_id"] for i in client.get("/api/queue", params={"limit": 200}).json()["items"]
        ]
        assert len(ids) == 30 and "rec-tomorrow" not in ids
        assert store.served.latest_days(7) == [datetime(2026, 1, 5).date()]
        clock.set("2026-01-07T08:30:00+00:00")  # tomorrow has come: the row is valid now
        api_sign_in(client)  # (and the session of yesterday has ended)
        ids = [
            i["recommendation_id"] for i in client.get("/api/queue", params={"limit": 200}).json()["items"]
        ]
        assert ids[0] == "rec-tomorrow" and len(ids) == 31
