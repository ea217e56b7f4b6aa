"""The loop's effect as data (alias spans) and as charts, and the audit pages' number formatting."""

import re
from xml.etree import ElementTree

import pytest

from fbloop_assets.lib.audit.effect import spans
from fbloop_assets.lib.weights.records import AliasMove
from fbloop_assets.web.audit_pages import flat, number
from fbloop_assets.web.charts import CHARTS, render_svg


def _move(i: int, to: str | None, effective: str) -> AliasMove:
    return AliasMove(
        i, "canary", None, effective, f"{effective}T02:00:00+00:00", "loop", None, to, "r", False, {}
    )


def test_spans_end_where_the_next_move_takes_effect_and_skip_clearings() -> None:
    moves = [_move(1, "w-a", "2026-01-03"), _move(2, None, "2026-01-06"), _move(3, "w-b", "2026-01-08")]
    assert [(s["version"], s["since"], s["until"]) for s in spans(moves)] == [
        ("w-a", "2026-01-03", "2026-01-06"),
        ("w-b", "2026-01-08", None),
    ]
    assert spans([]) == []


EFFECT = {
    "production": [{"version": "w-b", "since": "2026-01-03", "until": None, "reason": "r", "actor": "loop"}],
    "canary": [],
    "days": [
        {
            "day": f"2026-01-0{d}",
            "offline": {"snips_relative": {"estimate": 0.1, "lower": -0.05, "upper": 0.3}}
            if d == 2
            else None,
            "canary": {"lift": {"conversions": 0.05}, "interval": {"conversions": [-0.1, 0.2]}}
            if d == 3
            else None,
            "ingestion": {
                "read": {"labels": 10 * d},
                "quarantined": {"duplicate": d},
                "consent_excluded": None,
            },
        }
        for d in (1, 2, 3)
    ],
}


@pytest.mark.parametrize("name", sorted(CHARTS))
@pytest.mark.parametrize("effect", [EFFECT, {"production": [], "canary": [], "days": []}])
def test_every_chart_is_a_self_contained_svg(name: str, effect: dict) -> None:
    svg = render_svg(name, effect)
    root = ElementTree.fromstring(svg.encode())
    assert root.tag.endswith("svg")
    assert not re.search(r'(href|src)="https?:|url\(https?:', svg)  # nothing fetched from elsewhere


def test_numbers_read_as_an_analyst_reads_them() -> None:
    assert [number(v) for v in (None, True, 12345, 0.898129, -0.044308, 31663.78, "x")] == [
        "–",
        "yes",
        "12,345",
        "0.898",
        "-0.0443",
        "31,664",
        "x",
    ]
    assert flat({"a": {"b": 0.5, "c": [1, 2]}, "d": []}) == [("a.b", "0.5"), ("a.c", "1, 2"), ("d", "none")]
