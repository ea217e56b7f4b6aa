"""The export audit's two outcomes: a clean export is written, secured and recorded with its SHA-256;
an export the privacy guard refuses is deleted before anyone can read it and recorded as refused."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest

from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.store import open_store
from fbloop_assets.lib.dataset.export_audit import CheckedExport, ExportRequest, checked_export, list_exports
from fbloop_tests.test_export import DAY1, DAY2, NOW, outcome, write_day


def _export(lake: Lake, tmp_path: Path) -> tuple[CheckedExport, list[dict[str, Any]]]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    request = ExportRequest(
        end_day=DAY2, days_back=2, min_feedback_fields=1, fmt="csv", out_dir=tmp_path / "exports"
    )
    result = checked_export(
        lake, request, mode="pseudonymized", group="", engine=engine, actor="ana", via="cli", now=NOW
    )
    return result, list_exports(engine)


def test_a_clean_export_is_written_secured_and_recorded(lake: Lake, tmp_path: Path) -> None:
    write_day(lake, DAY1, [outcome("signal:1", event_type="click"), outcome("signal:2", rec="rec-2")])
    result, records = _export(lake, tmp_path)
    file = result.stats.file
    assert file.exists()
    assert stat.S_IMODE(file.stat().st_mode) == 0o640
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o750
    assert [r["status"] for r in records] == ["written"]
    assert records[0]["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert records[0]["rows"] == 2
    assert records[0]["actor"] == "ana"
    assert records[0]["parameters"]["privacy_mode"] == "pseudonymized"


@pytest.mark.parametrize(
    "hostile",
    [{"creator_id": "jane.doe@example.com"}, {"campaign_id": "https://example.com/u/jane?id=42"}],
    ids=["e-mail", "url"],
)
def test_an_export_holding_personal_data_is_deleted_and_recorded_as_refused(
    lake: Lake, tmp_path: Path, hostile: dict[str, str]
) -> None:
    write_day(
        lake, DAY1, [outcome("signal:1", event_type="click", **hostile), outcome("signal:2", rec="rec-2")]
    )
    result, records = _export(lake, tmp_path)
    assert result.outcome.failed
    assert not result.stats.file.exists()
    assert list((tmp_path / "exports").iterdir()) == []  # nothing readable left behind, no temporary file
    assert [r["status"] for r in records] == ["refused"]
    assert records[0]["sha256"] is None
    assert next(iter(hostile.values())) not in str(records[0]["detail"])  # the audit does not copy the value
