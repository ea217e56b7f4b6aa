"""A click-only log drives the loop end to end: impressions and clicks, no labels, no conversions.

The simulated world reports only impressions and clicks (`fbloop demo --click-only`); the
objective weighs clicks and not labels. The loop must still make candidates (the evidence guard
needs no labels), evaluate them on click estimates that agree with the hidden truth, promote
none that is truly worse, and `fbloop evaluate --json` must report click estimates.

Measured (seed 7, 6 days, 20,000 signals a day): the first candidate fitted from clicks alone
(day 3) has a true NDCG@5 of 0.801 against the hand-set weights' 0.724 (ceiling 0.885); it passes
its canary on clicks per impression (+9.3%) and becomes production on day 5. Before the fit's
intercepts were freed from the L2 penalty (`training.INTERCEPT_SCALING`) the click-only fit
pointed away from relevance (0.494) and nothing was ever promoted.
"""

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import date

import pytest

from fbloop_assets.cli import main
from fbloop_assets.lib.common.lake import Lake
from fbloop_assets.lib.weights.registry import INITIAL
from fbloop_tests.conftest import ProjectRun, project_env
from fbloop_tests.test_loop import LOOP_CONFIG

CLICK_ONLY_CONFIG = (
    LOOP_CONFIG
    + """
[objective]
click_weight = 1.0
conversion_weight = 0.0
engagement_weight = 0.0
label_weight = 0.0
"""
)


@pytest.fixture(scope="module")
def click_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectRun]:
    root = tmp_path_factory.mktemp("click_only")
    env = project_env(root, CLICK_ONLY_CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(
                ["demo", "--days", "6", "--seed", "7", "--signals-per-day", "20000", "--click-only", "--json"]
            )
        assert code == 0
        yield ProjectRun(root, json.loads(out.getvalue()), env)


@pytest.mark.slow
def test_a_click_only_log_yields_candidates_and_evaluations_on_click_estimates(
    click_run: ProjectRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = Lake(click_run.root / "data")
    days = [date(2026, 1, d) for d in range(1, 7)]
    feedback = lake.scan_tables("normalized_feedback", days)
    assert feedback is not None
    kinds = set(feedback.select("event_type").unique().collect()["event_type"].to_list())
    assert kinds == {"impression", "click"}  # the log really is click-only
    report = click_run.report
    judged = 0
    for day in report["days"]:
        path = lake.record_path("weights_evaluation", date.fromisoformat(day["day"]))
        if day.get("candidate_true_ndcg_at_5") is None or not path.exists():
            continue
        record = json.loads(path.read_text())
        candidate, production = record["metrics"]["candidate"], record["metrics"]["production"]
        assert candidate["ndcg_at_5"] is None and candidate["snips_click_yield"] > 0
        (guard,) = [c for c in record["checks"] if c["name"] == "no_regression"]
        assert "NDCG@5 not judged" in guard["detail"]
        true_gap = day["candidate_true_ndcg_at_5"] - day["true_ndcg_at_5"]
        estimated_gap = candidate["snips_objective_yield"] - production["snips_objective_yield"]
        if abs(true_gap) > 0.05:  # a clear true difference: the click estimate sees its direction
            assert (true_gap > 0) == (estimated_gap > 0)
        judged += 1
    assert judged >= 2  # candidates were made and evaluated without a single label
    # a truly better candidate reached production, from clicks alone
    promoted = [d for d in report["days"] if d["promoted"]]
    assert promoted, [d["reason"] for d in report["days"]]
    assert report["production_changes"] >= 1 and report["final"]["version"] != INITIAL.version
    assert report["final"]["true_ndcg_at_5"] > report["initial"]["true_ndcg_at_5"] + 0.03
    for k, v in click_run.env.items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    code = main(
        ["evaluate", "--weights", INITIAL.version, "--from", "2026-01-02", "--to", "2026-01-03", "--json"]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    for metrics in payload["results"].values():
        assert metrics["snips_click_yield"] > 0 and metrics["ips_clicks_per_slate"] > 0
        assert metrics["snips_objective_yield"] == pytest.approx(metrics["snips_click_yield"])
        assert metrics["ndcg_at_5"] is None and metrics["queries"] == 0  # no labels at all
