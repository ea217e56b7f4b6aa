"""The one configuration file: defaults, the shipped file, and clear refusals."""

from pathlib import Path

import pytest

from fbloop_assets.lib.common.config import ConfigError, FbloopConfig, load_config, parse_config

PROJECT = Path(__file__).resolve().parents[1]


def test_shipped_file_states_the_defaults() -> None:
    # fbloop.toml documents the defaults; it must not drift from the code.
    assert load_config(PROJECT / "fbloop.toml") == FbloopConfig()


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config() == FbloopConfig()


def test_env_var_selects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        "[attribution_windows_days]\nconversion = 10\n[ingestion]\nrecommendation_lookback_days = 12\n"
    )
    monkeypatch.setenv("FBLOOP_CONFIG", str(path))
    config = load_config()
    assert config.attribution_windows_days.conversion == 10.0
    assert config.ingestion.recommendation_lookback_days == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "unknown key 'colour'"),
        ("[privacy]\nmode = 'open'", "privacy.mode must be one of"),
        ("[ingestion]\nrecommendation_lookback_days = 'x'", "must be int"),
        ("[ingestion]\nrecommendation_lookback_days = 3", "must cover the longest attribution window"),
        ("[attribution_windows_days]\nclick = -1", "must be >= 0"),
        ("[privacy", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml")
