"""`campaign_results_daily` (what each campaign's posts achieved, per complete day) and
`campaign_tuning_suggestions` (evidence-backed changes to each campaign's settings)."""

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import md_table, partition_day
from fbloop_assets.defs.ordering import wait_for_earlier_days
from fbloop_assets.defs.partitions import daily_partitions
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import Lake, days_ending, frame_fingerprint, write_parquet
from fbloop_assets.lib.dataset.build import load_dataset, serving_window
from fbloop_assets.lib.dataset.record import DatasetRecord
from fbloop_assets.lib.scoring.features import CreatorFeatures
from fbloop_assets.lib.tuning import policy
from fbloop_assets.lib.tuning.record import TuningRecord
from fbloop_assets.lib.tuning.results import RESULTS_SCHEMA, daily_results
from fbloop_assets.lib.tuning.store import decisions, save_suggestions

DECISION_COLUMNS = ("suggestion_id", "campaign_id", "change", "decision", "reason", "actor", "at")
TRACKING_COLUMNS = ("suggestion_id", "campaign_id", "kpi", "baseline", "expected", "realized", "posts_since")


@dg.asset(
    partitions_def=daily_partitions,
    group_name="tuning",
    kinds={"polars", "parquet"},
    code_version="1",
    # same-day edges: the earlier days read are data (defs/partitions.py)
    deps=["feedback_dataset", "creators"],
)
def campaign_results_daily(context: dg.AssetExecutionContext, fbloop: FbloopResource) -> dg.MaterializeResult:
    """What each campaign's posts achieved on the newest complete serving day, per creator.

    The serving day is the newest one of this day's FeedbackDataset, whose attribution windows
    all closed by the end of this day (the longest window before it). Its recommendations and
    outcomes come from that dataset (nothing is re-read from the feedback itself, and nothing a
    guard held back counts); a day a guard blocked at the dataset has no results; each row is a (campaign,
    creator) with posts, impressions, engagements, clicks, conversions, cost (posts x the
    creator's price) and the creator's attributes that day. `campaign_tuning_suggestions` adds
    up a window of these small files.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    serving_day = serving_window(day, fbloop.config())[-1]
    wait_for_earlier_days(context, {"creators": [serving_day]})
    examples = load_dataset(lake, DatasetRecord.read(lake, day).version).examples()
    creators_path = lake.table_path("creators", serving_day)
    if creators_path.exists():
        frame = daily_results(examples, pl.read_parquet(creators_path), serving_day)
    else:
        context.log.warning(f"no creators snapshot for serving day {serving_day}: no results")
        frame = pl.DataFrame(schema=RESULTS_SCHEMA)
    path = write_parquet(frame, lake.table_path("campaign_results_daily", day))
    return dg.MaterializeResult(
        metadata={
            "serving_day": serving_day.isoformat(),
            "dagster/row_count": frame.height,
            "posts": int(frame["posts"].sum()),
            "campaigns": frame["campaign_id"].n_unique(),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(frame_fingerprint(frame)),
    )


def _campaign_markdown(result: dict[str, Any]) -> str:
    kpi = result["kpi"]
    head = (
        f"**{result['campaign_id']}** ({result['objective']}): {result['records']:,} posts from "
        f"{result['creators']:,} creators; {kpi} {result['baseline']}; "
        f"{result['considered']} change(s) tested."
    )
    if result["held"]:
        return f"{head}\n\nNo new suggestions: {result['held']}"
    if not result["suggestions"]:
        return f"{head}\n\nNo change has enough evidence."
    parts = [head]
    for i, s in enumerate(result["suggestions"], 1):
        parts.append(
            f"{i}. `{s['id']}` **{s['change']}** ({s['parameter']}: {s['current']} → {s['proposed']}), "
            f"{kpi} {s['expected_change']:+.1%} [{s['ci_low']:+.1%}, {s['ci_high']:+.1%}], "
            f"{s['records']:,} posts\n\n   {s['rationale']}"
        )
    return "\n\n".join(parts)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="tuning",
    kinds={"polars"},
    code_version="1",
    deps=[
        campaign_results_daily,
        "campaigns",
        "creators",
    ],
)
def campaign_tuning_suggestions(
    context: dg.AssetExecutionContext, fbloop: FbloopResource
) -> dg.MaterializeResult:
    """Suggested changes to each active campaign's settings, with evidence and rationale.

    Compares segments of what each campaign ran over the last `tuning.window_days` complete days
    (follower tier, engagement rate, niche, audience age and country, creators' weekly posts) on
    the KPI of its objective, and proposes changes to its filters and cadence: the parameter, the
    current and proposed value, the expected KPI change with a bootstrap interval over creators,
    the posts behind it and a plain-words rationale. Safeguards: `tuning.min_records` and
    `min_creators` of evidence, a family-wise `tuning.confidence`, no pool below
    `tuning.min_pool_size`, at most `tuning.max_changes_per_week` accepted changes per campaign, and
    no change an owner rejected in the last 7 days. Suggestions go to fbloop's database, where
    `fbloop tune accept|reject` records decisions; accepted ones are tracked here against the
    expected KPI.
    """
    day = partition_day(context)
    lake = fbloop.lake()
    config = fbloop.config().tuning
    # earlier days' results, and their suggestions and the owners' decisions in fbloop's database
    window = days_ending(day, config.window_days)
    wait_for_earlier_days(context, {"campaign_results_daily": window, "campaign_tuning_suggestions": window})
    results, missing = _window_results(lake, day, config.window_days)
    campaigns_path, creators_path = lake.table_path("campaigns", day), lake.table_path("creators", day)
    if not campaigns_path.exists() or not creators_path.exists():
        raise dg.Failure(f"campaigns or creators are not materialized for {day}: materialize them first")
    catalog = CreatorFeatures.build(pl.read_parquet(creators_path))
    engine = fbloop.store()
    campaigns = pl.read_parquet(campaigns_path)
    record = policy.tune_day(day, campaigns, results, catalog, decisions(engine), config, missing)
    new = save_suggestions(engine, policy.suggestions_of(record))
    path = TuningRecord(**record).write(lake, day)
    return dg.MaterializeResult(metadata=_metadata(record, new, path))


def _window_results(lake: Lake, day: date, window_days: int) -> tuple[pl.DataFrame, list[str]]:
    """The `campaign_results_daily` files of the window ending ``day``, and the days without one."""
    loop_days = days_ending(day, window_days)
    paths = [p for d in loop_days if (p := lake.table_path("campaign_results_daily", d)).exists()]
    missing = [d.isoformat() for d in loop_days if not lake.table_path("campaign_results_daily", d).exists()]
    results = pl.read_parquet(paths) if paths else pl.DataFrame(schema=RESULTS_SCHEMA)
    return results, missing


def _metadata(record: dict[str, Any], new: int, path: Path) -> dict[str, Any]:
    """The asset's metadata: counts, an overview per campaign, the decisions, the tracking, the record."""
    out = record["campaigns"]
    metadata: dict[str, Any] = {
        "suggestions": len(policy.suggestions_of(record)),
        "new_suggestions": new,
        "campaigns": len(out),
        "serving_days": dg.MetadataValue.json(record["serving_days"]),
        "days_missing": dg.MetadataValue.json(record["days_missing"]),
        "overview": md_table(
            ["campaign", "objective", "posts", "KPI", "baseline", "suggestions", "held"],
            [
                [
                    c["campaign_id"],
                    c["objective"],
                    c["records"],
                    c["kpi"],
                    c["baseline"],
                    len(c["suggestions"]),
                    c["held"] or "",
                ]
                for c in out
            ],
        ),
        "decisions": md_table(
            ["suggestion", "campaign", "change", "decision", "reason", "by", "at"],
            [[d[k] for k in DECISION_COLUMNS] for d in record["decisions"]],
        ),
        "accepted_tracking": md_table(
            ["suggestion", "campaign", "KPI", "baseline", "expected", "realized", "posts since"],
            [[t[k] for k in TRACKING_COLUMNS] for t in record["tracking"]],
        ),
        "path": dg.MetadataValue.path(str(path)),
    }
    for c in out:
        if c["suggestions"] or c["held"]:
            metadata[f"campaign {c['campaign_id']}"] = dg.MetadataValue.md(_campaign_markdown(c))
    return metadata
