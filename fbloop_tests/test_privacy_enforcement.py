"""Uniform privacy enforcement and the export audit (issue 18, items 3 and 4).

The privacy checks block whatever `guards.enabled` says; `no_personal_data` scans every column
for what it claims; `fbloop export` and the `feedback_export` asset share one code path that
judges the written file and records it (who, when, parameters, file, rows, SHA-256).
"""

import grp
import hashlib
import io
import json
import os
import stat
from contextlib import redirect_stderr, redirect_stdout
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from fbloop_assets.cli import main
from fbloop_assets.defs.dataset.export import feedback_export
from fbloop_assets.defs.feedback.assets import no_personal_data
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.common.outcome import GuardOutcome, enforce
from fbloop_assets.lib.common.privacy import personal_data_findings
from fbloop_assets.lib.dataset.guards import privacy
from fbloop_tests.test_export import DAY1, DAY2, label, outcome, write_day

PSEUDONYM = "ab" * 32


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_privacy_guards_fail_with_guards_off_others_only_warn() -> None:
    for name in ("privacy", "no_personal_data"):
        failed = GuardOutcome(name, "fail", 1, 0, "personal data")
        assert enforce(failed, enabled=False).failed
    other = enforce(GuardOutcome("drift", "fail", 1, 0, "drifted"), enabled=False)
    assert other.verdict == "warn"
    leaking = privacy(pl.DataFrame({"subject_age": [31]}), "pseudonymized", "dataset d-1")
    assert enforce(leaking, enabled=False).failed


def test_the_scan_finds_urls_free_text_emails_raw_ids_and_exact_ages_in_any_column() -> None:
    raw_ids = pl.Series("subject_id", ["sub-0000042", "sub-0000043"])
    clean = pl.DataFrame(
        {
            "source": ["shop_pixel", "platform_api"],
            "subject_key": [PSEUDONYM, None],
            "age_bucket": ["18-25", None],
            "subject_country": ["DE", None],
        }
    )
    assert personal_data_findings(clean, "pseudonymized", raw_ids) == []
    dirty = clean.with_columns(
        pl.Series("source", ["https://shop.example/p/1", "write to a@b.example"]),
        pl.Series("reviewer_id", ["sub-0000042", "call me on +49 30 1234567"]),
        pl.Series("buyer_age", [31, 40]),
    )
    findings = personal_data_findings(dirty, "pseudonymized", raw_ids)
    assert findings == [
        "exact age column 'buyer_age' present",
        "1 URLs in column 'source'",
        "1 e-mail addresses in column 'source'",
        "1 free-text values in column 'source'",
        "1 free-text values in column 'reviewer_id'",
        "1 raw subject ids in column 'reviewer_id'",
    ]
    # identifiable mode keeps consenting subjects' raw ids as keys, and only there
    keyed = clean.with_columns(pl.Series("subject_key", ["sub-0000042", None]))
    assert personal_data_findings(keyed, "identifiable", raw_ids) == []
    assert "1 raw subject ids in column 'subject_key'" in personal_data_findings(
        keyed, "pseudonymized", raw_ids
    )


def _write_raw_signals(lake: Lake, day: date, subject_ids: list[str]) -> None:
    path = lake.table_path("raw_outcome_signals", day)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"subject_id": subject_ids}, schema={"subject_id": pl.String}).write_parquet(path)


def test_no_personal_data_check_fires_on_a_raw_id_in_the_written_day(lake: Lake) -> None:
    _write_raw_signals(lake, DAY1, ["sub-0000042"])
    write_day(lake, DAY1, [outcome("signal:1", subject_key=PSEUDONYM, age_bucket="25-35")])
    assert no_personal_data(lake, DAY1, "pseudonymized").passed
    write_day(
        lake,
        DAY1,
        [outcome("signal:1", subject_key=PSEUDONYM), outcome("signal:2", reviewer_id="sub-0000042")],
    )
    check = no_personal_data(lake, DAY1, "pseudonymized")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == "1 raw subject ids in column 'reviewer_id'"


def _exports(argv: list[str] | None = None) -> list[dict[str, Any]]:
    code, out, err = cli(["exports", "list", "--json", *(argv or [])])
    assert code == 0, err
    return json.loads(out)["exports"]


def test_cli_and_asset_exports_are_audited_private_and_listed(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_day(lake, DAY1, [outcome("signal:1", rec="rec-2", subject_key=PSEUDONYM)])
    write_day(lake, DAY2, [outcome("signal:2"), label("label:1")])
    group = grp.getgrgid(os.getgid()).gr_name
    config = tmp_path / "fbloop.toml"
    config.write_text(f'[export]\ngroup = "{group}"\n')
    monkeypatch.setenv("FBLOOP_CONFIG", str(config))
    monkeypatch.setenv("FBLOOP_ACTOR", "ml-engineer-1")
    code, out, err = cli(["export", "--days-back", "2", "--end-date", DAY2.isoformat(), "--json"])
    assert code == 0, err
    stats = json.loads(out)
    path = Path(stats["file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    assert path.stat().st_gid == path.parent.stat().st_gid == grp.getgrnam(group).gr_gid
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [feedback_export],
            resources={"fbloop": FbloopResource()},
            partition_key=DAY2.isoformat(),
            instance=instance,
            run_config={"ops": {"feedback_export": {"config": {"days_back": 1, "format": "parquet"}}}},
        )
    assert result.success
    cli_row, asset_row = _exports()
    assert cli_row["actor"] == "ml-engineer-1" and cli_row["via"] == "cli fbloop export"
    assert cli_row["file"] == str(path) and cli_row["rows"] == stats["exported"] == 2
    assert cli_row["sha256"] == stats["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cli_row["parameters"] | {} == {
        "end_day": "2026-03-02",
        "days_back": 2,
        "min_feedback_fields": 1,
        "format": "csv",
        "out_dir": str(lake.root / "exports"),
        "privacy_mode": "pseudonymized",
        "group": group,
    }
    assert cli_row["status"] == "written" and cli_row["file_mode"] == "0o640"
    assert asset_row["via"].startswith("asset feedback_export, run ") and asset_row["rows"] == 1
    assert asset_row["parameters"]["format"] == "parquet" and asset_row["parameters"]["days_back"] == 1
    assert Path(asset_row["file"]).suffix == ".parquet"
    assert asset_row["sha256"] == hashlib.sha256(Path(asset_row["file"]).read_bytes()).hexdigest()
    code, text, _ = cli(["exports", "list"])
    assert code == 0 and "ml-engineer-1" in text and cli_row["sha256"][:12] in text


def test_an_unknown_export_group_is_one_clear_line(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_day(lake, DAY2, [outcome("signal:2")])
    config = tmp_path / "fbloop.toml"
    config.write_text('[export]\ngroup = "no-such-group-fbloop"\n')
    monkeypatch.setenv("FBLOOP_CONFIG", str(config))
    code, _, err = cli(["export", "--end-date", DAY2.isoformat()])
    assert code == 1
    assert (
        err.strip().splitlines()[-1]
        == "fbloop: error: export.group 'no-such-group-fbloop' is not a group on this machine"
    )
    assert _exports() == []


def test_the_dataset_and_export_privacy_guard_scans_values_in_every_column() -> None:
    examples = pl.DataFrame({"recommendation_id": ["rec-1"], "campaign_id": ["cmp-1"]})
    assert privacy(examples, "pseudonymized", "dataset d-1").passed
    leaking = examples.with_columns(pl.lit("https://shop.example/CANARY-URL").alias("campaign_id"))
    outcome = enforce(privacy(leaking, "pseudonymized", "dataset d-1"), enabled=False)
    assert outcome.failed and "1 URLs in column 'campaign_id'" in outcome.detail
