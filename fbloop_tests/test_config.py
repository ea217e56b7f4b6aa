"""The one configuration file: defaults, the shipped file, every key's range, clear refusals."""

import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fbloop_assets.lib.common.config import (
    ConfigError,
    FbloopConfig,
    keys,
    load_config,
    parse_config,
    value_at,
)
from fbloop_assets.lib.common.config_keys import SPEC, Choice, Number, Text, number

PROJECT = Path(__file__).resolve().parents[1]
NUMERIC = {
    dotted: f.metadata[SPEC]
    for dotted, f, default in keys(FbloopConfig)
    if isinstance(f.metadata.get(SPEC), Number)
}


def toml_for(dotted: str, literal: str) -> str:
    section, name = dotted.rsplit(".", 1)
    return f"[{section}]\n{name} = {literal}\n"


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_shipped_file_states_the_defaults() -> None:
    # fbloop.toml documents the defaults; it must not drift from the code.
    assert load_config(PROJECT / "fbloop.toml") == FbloopConfig()


def test_shipped_file_lists_every_key() -> None:
    def leaves(table: dict[str, Any], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for name, value in table.items():
            out |= leaves(value, f"{prefix}{name}.") if isinstance(value, dict) else {prefix + name}
        return out

    shipped = leaves(tomllib.loads((PROJECT / "fbloop.toml").read_text()))
    assert shipped == {dotted for dotted, _, _ in keys(FbloopConfig)}


def _allowed(spec: Number | Choice | Text | None) -> str:
    """What the README's column "allowed" says for a key declared as ``spec``."""
    if spec is None:
        return "true, false"
    if isinstance(spec, Number):
        return str(spec.range)
    return ", ".join(f"`{o}`" for o in spec.options) if isinstance(spec, Choice) else spec.describe()


def test_readme_table_shows_every_key_and_what_it_allows() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :].split("Environment variables:")[0]
    documented: dict[str, str] = {}
    for row in re.findall(r"^\| (`.+)$", table, flags=re.MULTILINE):
        names, _, allowed, *_ = row.split(" | ")
        full: list[str] = []
        for name in re.findall(r"`([^`]+)`", names):  # `a.b.c`, `.d`: d in the same section as c
            full.append(full[-1].rsplit(".", 1)[0] + name if name.startswith(".") else name)
        per_key = allowed.split("; ") if "; " in allowed else [allowed.removesuffix(" each")] * len(full)
        documented |= dict(zip(full, per_key, strict=True))
    declared = {dotted: _allowed(f.metadata.get(SPEC)) for dotted, f, _ in keys(FbloopConfig)}
    assert documented == declared


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


def test_every_key_declares_what_it_allows() -> None:
    # A number without a declared range would let NaN, inf or a negative through.
    for dotted, f, default in keys(FbloopConfig):
        spec = f.metadata.get(SPEC)
        assert f.type == type(default).__name__, f"{dotted}: annotated {f.type}, default {default!r}"
        if isinstance(default, bool):
            assert spec is None, dotted
        elif isinstance(default, int | float):
            assert isinstance(spec, Number) and spec.kind is type(default), dotted
            assert math.isfinite(spec.range.low) and math.isfinite(spec.range.high), dotted
            assert default in spec.range, dotted
        else:
            assert isinstance(spec, Choice | Text), dotted
    assert len(NUMERIC) >= 70  # the walk reaches every section (70 numeric keys when written)


def test_a_key_cannot_be_declared_without_both_bounds_or_outside_them() -> None:
    with pytest.raises(TypeError, match="one lower bound"):
        number(1.0, ge=0)
    with pytest.raises(TypeError, match="finite"):
        number(1.0, ge=0, le=math.inf)
    with pytest.raises(TypeError, match="is not a number in"):
        number(2.0, ge=0, le=1)


def _bad_literals(spec: Number) -> list[str]:
    """TOML values ``spec`` must refuse: non-finite, just past each end, huge, of the wrong type."""
    low, high = spec.range.low, spec.range.high
    if spec.kind is int:
        beyond = [str(int(low) - 1), str(int(high) + 1), "1.5", "2.0", str(10**30), "-" + str(10**30)]
    else:
        beyond = [
            repr(math.nextafter(low, -math.inf)),
            repr(math.nextafter(high, math.inf)),
            "1e308",
            "-1e308",
        ]
        beyond += [str(10**30)]  # an integer too big for any float key's range
    if spec.range.low_open:
        beyond.append(repr(low) if spec.kind is float else str(int(low)))  # zero where positive is required
    if spec.range.high_open:
        beyond.append(repr(high))
    if low >= 0:
        beyond.append("-1")
    return [*beyond, "nan", "inf", "-inf", "+inf", "'7'", "true", "[1]", "{ a = 1 }", "1979-05-27"]


@pytest.mark.parametrize("dotted", sorted(NUMERIC))
def test_every_numeric_key_refuses_what_its_range_excludes(dotted: str) -> None:
    spec = NUMERIC[dotted]
    for literal in _bad_literals(spec):
        message = refusal(toml_for(dotted, literal))
        # the key, what it allows and the range, in one line
        assert message.startswith(f"{dotted} must be {spec.describe()}, got "), (literal, message)


@pytest.mark.parametrize("dotted", sorted(NUMERIC))
def test_every_numeric_key_refuses_an_integer_too_long_to_parse(dotted: str) -> None:
    # tomllib raises a bare ValueError beyond Python's 4,300 digits: it must name the key too
    message = refusal(toml_for(dotted, "9" * 5000))
    assert (
        message == f"{dotted} must be {NUMERIC[dotted].describe()}, got an integer of more than 4,300 digits"
    )


def _literal(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@settings(max_examples=2000, deadline=None)
@given(
    dotted=st.sampled_from(sorted(NUMERIC)),
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.integers(min_value=-5, max_value=400),
        st.floats(min_value=-2.0, max_value=2.0),
    ),
)
def test_a_value_is_accepted_only_in_its_range_and_refused_naming_its_key(dotted: str, value: float) -> None:
    spec = NUMERIC[dotted]
    fits = (spec.kind is float or isinstance(value, int)) and (
        (not isinstance(value, float) or math.isfinite(value)) and value in spec.range
    )
    try:
        config = parse_config(toml_for(dotted, _literal(value)))
    except ConfigError as exc:
        message = str(exc)
        assert dotted in message and "\n" not in message, message
        if not fits:
            assert str(spec.range) in message, message
        else:  # in its own range, refused by a rule that joins it to another key, which it names
            assert "must be at most" in message or "must cover" in message or "at least one of" in message
        return
    assert fits, f"{dotted} = {value!r} was accepted"
    stored = value_at(config, dotted)
    assert stored == value and type(stored) is spec.kind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "unknown key 'colour'"),
        ("[guards.regression]\nsnip_tolerance = 0.1", "unknown key 'guards.regression.snip_tolerance'"),
        ("guards = 1", "guards must be a table"),
        ("[privacy]\nmode = 'open'", "privacy.mode must be one of aggregated, pseudonymized, identifiable"),
        ("[privacy]\nconsent_flag = ''", "privacy.consent_flag must be a non-empty string, got ''"),
        ("[privacy]\nconsent_flag = 1", "privacy.consent_flag must be a non-empty string, got 1"),
        ("[guards]\nenabled = 1", "guards.enabled must be true or false, got 1"),
        ("[labeling]\nhttps_only = 'yes'", "labeling.https_only must be true or false, got 'yes'"),
        (
            "[ingestion]\nrecommendation_lookback_days = 'x'",
            r"ingestion.recommendation_lookback_days must be an integer in \[1, 365\], got 'x'",
        ),
        (
            "[ingestion]\nrecommendation_lookback_days = 3",
            r"must cover the longest attribution window: at least 7 \(attribution_windows_days.conversion\)",
        ),
        (
            "[attribution_windows_days]\nclick = -1",
            r"attribution_windows_days.click must be a number in \[0, 365\]",
        ),
        (
            "[labeling]\nsession_hours = nan",
            r"labeling.session_hours must be a number in \(0, 8760\], got nan",
        ),
        ("x = { a = " + "9" * 5000 + " }", "not valid TOML: an integer of more than 4,300 digits"),
        ("[privacy", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(text: str, message: str) -> None:
    assert re.search(message, refusal(text))


@pytest.mark.parametrize(
    ("lower", "upper", "same", "more"),
    [
        ("guards.label_quality.alpha_fail", "guards.label_quality.alpha_warn", "0.5", "0.6"),
        ("guards.anomalies.z_warn", "guards.anomalies.z_fail", "0.5", "0.6"),
        ("guards.drift.psi_warn", "guards.drift.psi_fail", "0.5", "0.6"),
        ("canary.days", "canary.max_days", "5", "6"),
    ],
)
def test_a_warn_threshold_stays_on_the_safe_side_of_its_fail_threshold(
    lower: str, upper: str, same: str, more: str
) -> None:
    (section, low), (_, high) = lower.rsplit(".", 1), upper.rsplit(".", 1)
    parse_config(f"[{section}]\n{low} = {same}\n{high} = {same}\n")  # equal is allowed
    message = refusal(f"[{section}]\n{low} = {more}\n{high} = {same}\n")
    assert message == f"{lower} must be at most {upper} ({same}), got {more}"


def test_lookback_must_cover_the_longest_window() -> None:
    window = "[attribution_windows_days]\nclick = 20.0\n"
    parse_config(window + "[ingestion]\nrecommendation_lookback_days = 20\n")
    message = refusal(window + "[ingestion]\nrecommendation_lookback_days = 19\n")
    assert message.endswith("at least 20 (attribution_windows_days.click), got 19")


def test_training_needs_one_kind_of_evidence() -> None:
    zeros = "[training]\nlabel_weight = 0\nconversion_weight = 0\nclick_weight = 0\n"
    assert parse_config(zeros).training.engagement_weight == 0.05  # one kind of evidence is enough
    assert refusal(zeros + "engagement_weight = 0\n") == (
        "at least one of training.label_weight, training.conversion_weight, training.click_weight,"
        " training.engagement_weight must be positive, got 0 for all of them"
    )


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[privacy]\nconsent_flag = 'zustimmung_\xe4'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.toml: not UTF-8 \(byte 37\)"):
        load_config(path)
