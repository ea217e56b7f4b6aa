"""`LoopOutcome`: the run summary's loop part comes from the stages' typed records, and a record that
does not say what its reader expects fails loudly instead of turning into a silent None."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from fbloop_assets.cli.loop import _render_loop
from fbloop_assets.lib.common.lake import Lake, write_json
from fbloop_assets.lib.common.records import MissingRecord
from fbloop_assets.lib.common.store import open_store
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.weights.decisions import Decisions, LoopDecision
from fbloop_assets.lib.weights.handoffs import CandidateRecord, EvaluationRecord
from fbloop_assets.lib.weights.outcome import loop_outcome

DAY = date(2026, 1, 9)
EVERY = {"feedback_dataset", "candidate_weights", "weights_evaluation", "canary_review", "production_weights"}


def _decisions(tmp_path: Path) -> Decisions:
    return Decisions(open_store(f"sqlite:///{tmp_path / 'store.sqlite'}"))


def _write_day(lake: Lake, decisions: Decisions) -> None:
    manifest = lake.root / "datasets" / "ds-1" / "manifest.json"
    write_json({"record_count": 1234, "labeled_count": 56}, manifest)
    DatasetRecord(version="ds-1", manifest=lake.relative(manifest)).write(lake, DAY)
    CandidateRecord(candidate="w-2", parent="w0", dataset_version="ds-1").write(lake, DAY)
    arms = {
        "candidate": {"ndcg_at_5": 0.91, "snips_conversion_yield": 0.0123},
        "production": {"ndcg_at_5": 0.88},
    }
    EvaluationRecord(candidate="w-2", production="w0", dataset_version="ds-1", metrics=arms).write(lake, DAY)
    aliases = {"production": "w0", "staging": None, "canary": None}
    decisions.record(
        LoopDecision(
            day=DAY.isoformat(),
            stage="production_weights",
            decided_at="2026-01-10T00:05:00+00:00",
            outcome="staged",
            candidate="w-2",
            reason="staging → w-2: passed every check",
            before=aliases,
            after=aliases | {"staging": "w-2"},
            moves=[{"alias": "staging", "to_version": "w-2", "reason": "passed every check"}],
            checks=[],
            review=None,
            notes=[],
            history_upto=1,
        )
    )


def test_the_loop_part_of_a_summary_is_read_from_the_records(lake: Lake, tmp_path: Path) -> None:
    decisions = _decisions(tmp_path)
    _write_day(lake, decisions)
    loop = loop_outcome(lake, DAY, EVERY, decisions).as_dict()
    assert loop["dataset"] == {"version": "ds-1", "records": 1234, "labeled": 56}
    assert loop["candidate"] == "w-2"
    assert loop["production"]["after"]["staging"] == "w-2" and loop["production"]["promoted"] is False
    assert loop["canary_review"] is None  # no decision recorded for that stage
    assert _render_loop(loop) == [
        "  dataset ds-1: 1,234 records (56 labeled)",
        "  candidate w-2: NDCG@5 0.910 (production 0.880), SNIPS conversion yield 0.0123 (production –)",
        "  production w0 (staging w-2): not promoted: staging → w-2: passed every check",
    ]


def test_records_of_stages_the_run_did_not_materialize_are_not_shown(lake: Lake, tmp_path: Path) -> None:
    decisions = _decisions(tmp_path)
    _write_day(lake, decisions)  # an earlier run of the day; this one was stopped after the dataset
    loop = loop_outcome(lake, DAY, {"feedback_dataset"}, decisions)
    assert loop.dataset is not None and loop.candidate is None and loop.production is None
    assert _render_loop(loop.as_dict())[-1] == "  production unchanged: production_weights did not run"


def test_a_stage_that_ran_without_its_record_is_an_error(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(MissingRecord, match="candidate_weights is not materialized for 2026-01-09"):
        loop_outcome(lake, DAY, {"candidate_weights"}, _decisions(tmp_path))


def test_a_record_whose_field_was_renamed_fails_loudly(lake: Lake, tmp_path: Path) -> None:
    decisions = _decisions(tmp_path)
    _write_day(lake, decisions)
    path = lake.record_path("candidate_weights", DAY)
    record = json.loads(path.read_text())
    record["candidate_version"] = record.pop("candidate")  # a writer renamed the field
    path.write_text(json.dumps(record))
    with pytest.raises(TypeError, match="candidate"):
        loop_outcome(lake, DAY, EVERY, decisions)


def test_newest_is_the_newest_loop_day_not_the_newest_file(lake: Lake) -> None:
    from fbloop_assets.lib.tuning.record import TuningRecord

    with pytest.raises(MissingRecord, match="campaign_tuning_suggestions is not materialized for any day"):
        TuningRecord.newest(lake)
    for day in ("2026-01-12", "2026-01-03"):  # a backfill of an old day writes its file last
        TuningRecord(day, [], [], [], [], []).write(lake, date.fromisoformat(day))
    assert TuningRecord.newest(lake).day == "2026-01-12"
