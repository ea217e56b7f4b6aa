"""The command line: clean JSON on stdout, progress on stderr, one-line errors."""

import json
import shutil
from pathlib import Path

import pytest

from fbloop_assets.cli import build_parser, main
from fbloop_assets.lib.common.lake import Lake
from fbloop_tests.tiny_world import DAY, write_tiny_day

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_run_prints_one_json_document(
    lake: Lake, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tiny_day(lake)
    assert main(["run", "--date", DAY, "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["date"] == DAY and summary["quarantined"]["total"] == 3
    assert summary["feedback"]["normalized"] == 5
    assert "materializing the daily loop" in err


def test_run_plain_output_reads_as_a_summary(
    lake: Lake, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tiny_day(lake)
    assert main(["run", "--date", DAY]) == 0
    out = capsys.readouterr().out
    assert "quarantined 3: duplicate 1, malformed_value 1, unknown_recommendation 1" in out
    assert "excluded for missing consent 1" in out
    # the summary goes on to what the loop decided (a day with no closed window: nothing to fit)
    assert "  dataset ds-" in out and "  production w0: not promoted: no candidate today" in out


def test_errors_are_one_line_without_traceback(
    lake: Lake,
    dagster_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_tiny_day(lake)
    bad = tmp_path / "bad.toml"
    bad.write_text("[privacy]\nmode = 'everything'\n")
    monkeypatch.setenv("FBLOOP_CONFIG", str(bad))
    assert main(["run", "--date", DAY]) == 1
    err = capsys.readouterr().err
    assert "privacy.mode must be one of" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_bad_date_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--date", "2026-13-01"])
    assert exit_info.value.code == 2
    assert "not a date (YYYY-MM-DD): '2026-13-01'" in capsys.readouterr().err


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        assert f"fbloop {name}" in readme, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in readme, f"fbloop {name} {flag}"
