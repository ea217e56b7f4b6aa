"""`campaign_results_daily` (what each campaign's posts achieved, per complete day) and
`campaign_tuning_suggestions` (evidence-backed changes to each campaign's settings)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from fbloop_assets.defs.metadata import md_table, partition_day
from fbloop_assets.defs.partitions import daily_partitions, window_dep
from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.lake import days_ending, frame_fingerprint, write_json, write_parquet
from fbloop_assets.lib.common.store import open_data_store
from fbloop_assets.lib.dataset.build import load_dataset, serving_window
from fbloop_assets.lib.scoring.features import CreatorFeatures
from fbloop_assets.lib.tuning import suggestions as tuning
from fbloop_assets.lib.tuning.store import decisions, save_suggestions

# The lineage graph shows the default window; the days actually read follow tuning.window_days.
DEFAULT_WINDOW_DAYS = 14


@dg.asset(
    partitions_def=daily_partitions,
    group_name="tuning",
    kinds={"polars", "parquet"},
    code_version="1",
    deps=["feedback_dataset", window_dep("creators", -7, -7)],
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
    record = lake.record_path("feedback_dataset", day)
    if not record.exists():
        raise dg.Failure(f"feedback_dataset is not materialized for {day}: materialize it first")
    examples = load_dataset(lake, json.loads(record.read_text())["version"]).examples()
    creators_path = lake.table_path("creators", serving_day)
    if creators_path.exists():
        frame = tuning.daily_results(examples, pl.read_parquet(creators_path), serving_day)
    else:
        context.log.warning(f"no creators snapshot for serving day {serving_day}: no results")
        frame = pl.DataFrame(schema=tuning.RESULTS_SCHEMA)
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


def _rejected_skip(rejected: set[tuple[str, str]]) -> Callable[[str, Any], bool]:
    """Changes an owner rejected in the last 7 days are not proposed again."""

    def skip(parameter: str, proposed: Any) -> bool:
        return (parameter, json.dumps(proposed)) in rejected

    return skip


def _tracking(decided: list[dict[str, Any]], results: pl.DataFrame) -> list[dict[str, Any]]:
    """For accepted suggestions: the campaign's KPI since the decision against the expectation."""
    rows = []
    for d in decided:
        if d["decision"] != "accepted":
            continue
        s = d["suggestion"]
        objective = next(k for k, (kpi, _) in tuning.KPIS.items() if kpi.name == s["kpi"])
        realized = tuning.realized_kpi(
            results, s["campaign_id"], objective, datetime.fromisoformat(d["at"]).date()
        )
        value = realized["value"]
        rows.append(
            {
                "suggestion_id": s["id"],
                "campaign_id": s["campaign_id"],
                "kpi": s["kpi"],
                "baseline": s["baseline"],
                "expected": s["expected"],
                "realized": value,
                "realized_change": value / s["baseline"] - 1.0 if value is not None else None,
                "expected_change": s["expected_change"],
                "posts_since": realized["records"],
                "days_since": realized["days"],
            }
        )
    return rows


@dg.asset(
    partitions_def=daily_partitions,
    group_name="tuning",
    kinds={"polars"},
    code_version="1",
    deps=[
        window_dep(campaign_results_daily, -(DEFAULT_WINDOW_DAYS - 1)),
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
    loop_days = days_ending(day, config.window_days)
    paths = [p for d in loop_days if (p := lake.table_path("campaign_results_daily", d)).exists()]
    missing = [d.isoformat() for d in loop_days if not lake.table_path("campaign_results_daily", d).exists()]
    results = pl.read_parquet(paths) if paths else pl.DataFrame(schema=tuning.RESULTS_SCHEMA)
    window = sorted(results["serving_day"].unique().to_list())
    campaigns_path, creators_path = lake.table_path("campaigns", day), lake.table_path("creators", day)
    if not campaigns_path.exists() or not creators_path.exists():
        raise dg.Failure(f"campaigns or creators are not materialized for {day}: materialize them first")
    catalog = CreatorFeatures.build(pl.read_parquet(creators_path))
    engine = open_data_store(lake.root)
    decided = decisions(engine)
    end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    week_ago = end_of_day - timedelta(days=7)

    def recent(d: dict[str, Any]) -> bool:
        return week_ago <= datetime.fromisoformat(d["at"]) < end_of_day

    out: list[dict[str, Any]] = []
    for campaign in tuning.active_campaigns(pl.read_parquet(campaigns_path), day).iter_rows(named=True):
        cid = campaign["campaign_id"]
        mine = [d for d in decided if d["suggestion"]["campaign_id"] == cid and recent(d)]
        accepted = sum(d["decision"] == "accepted" for d in mine)
        rejected = {
            (d["suggestion"]["parameter"], json.dumps(d["suggestion"]["proposed"]))
            for d in mine
            if d["decision"] == "rejected"
        }
        result = tuning.tune_campaign(
            campaign,
            results,
            day,
            window,
            config,
            catalog,
            skip=_rejected_skip(rejected),
        )
        entry = result.as_dict()
        if accepted >= config.max_changes_per_week:
            entry["held"] = (
                f"{accepted} change(s) accepted in the last 7 days (limit tuning.max_changes_per_week = "
                f"{config.max_changes_per_week}); the campaign needs time to show their effect"
            )
            entry["suggestions"] = []
        out.append(entry)
    suggestions = [s for c in out for s in c["suggestions"]]
    new = save_suggestions(engine, suggestions)
    tracking = _tracking(decided, results)
    record = {
        "day": day.isoformat(),
        "serving_days": [d.isoformat() for d in window],
        "days_missing": missing,
        "campaigns": out,
        "decisions": [
            {k: v for k, v in d.items() if k != "suggestion"}
            | {"campaign_id": d["suggestion"]["campaign_id"], "change": d["suggestion"]["change"]}
            for d in decided
        ],
        "tracking": tracking,
    }
    path = write_json(record, lake.record_path("campaign_tuning_suggestions", day))
    metadata: dict[str, Any] = {
        "suggestions": len(suggestions),
        "new_suggestions": new,
        "campaigns": len(out),
        "serving_days": dg.MetadataValue.json(record["serving_days"]),
        "days_missing": dg.MetadataValue.json(missing),
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
            [
                [
                    d["suggestion_id"],
                    d["campaign_id"],
                    d["change"],
                    d["decision"],
                    d["reason"],
                    d["actor"],
                    d["at"],
                ]
                for d in record["decisions"]
            ],
        ),
        "accepted_tracking": md_table(
            ["suggestion", "campaign", "KPI", "baseline", "expected", "realized", "posts since"],
            [
                [
                    t["suggestion_id"],
                    t["campaign_id"],
                    t["kpi"],
                    t["baseline"],
                    t["expected"],
                    t["realized"],
                    t["posts_since"],
                ]
                for t in tracking
            ],
        ),
        "path": dg.MetadataValue.path(str(path)),
    }
    for c in out:
        if c["suggestions"] or c["held"]:
            metadata[f"campaign {c['campaign_id']}"] = dg.MetadataValue.md(_campaign_markdown(c))
    return dg.MaterializeResult(metadata=metadata)
