"""The Dagster project loads, names its assets as DESIGN.md promises, and schedules day D-1."""

from datetime import UTC, datetime

import dagster as dg

from fbloop_assets.definitions import defs

CONTRACT_ASSETS = {
    "creators",
    "campaigns",
    "raw_recommendations",
    "raw_outcome_signals",
    "raw_labels",
    "normalized_feedback",
    "quarantine",
}


def test_definitions_are_loadable() -> None:
    dg.Definitions.validate_loadable(defs)


def test_asset_names_follow_the_design() -> None:
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys >= CONTRACT_ASSETS


def test_every_asset_has_a_description_for_the_ui() -> None:
    for node in defs.resolve_asset_graph().asset_nodes:
        assert node.description and len(node.description) > 40, node.key


def test_normalized_feedback_carries_a_blocking_privacy_check() -> None:
    node = defs.resolve_asset_graph().get(dg.AssetKey("normalized_feedback"))
    assert dg.AssetCheckKey(dg.AssetKey("normalized_feedback"), "no_personal_data") in node.check_keys
    spec = next(
        s for s in defs.resolve_assets_def("normalized_feedback").check_specs if s.name == "no_personal_data"
    )
    assert spec.blocking


def test_schedule_runs_the_previous_day_at_two() -> None:
    schedule = defs.resolve_schedule_def("daily_feedback_loop_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 6, 2, 0, tzinfo=UTC))
    run_requests = schedule.evaluate_tick(context).run_requests
    assert run_requests is not None and [r.partition_key for r in run_requests] == ["2026-01-05"]
