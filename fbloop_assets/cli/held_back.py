"""`fbloop held-back list|release`: inspect what the guards held back, release what is sound."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from fbloop_assets.cli.common import emit, iso_date, progress
from fbloop_assets.lib.common.lake import Lake


def _days(lake: Lake, day: date | None) -> list[date]:
    """``day``, or every day `held_back_feedback` has a table for."""
    if day is not None:
        return [day]
    folder = lake.root / "warehouse" / "held_back_feedback"
    return sorted(date.fromisoformat(p.stem) for p in folder.glob("*.parquet")) if folder.is_dir() else []


def cmd_list(args: argparse.Namespace) -> None:
    import polars as pl

    from fbloop_assets.lib.common.lake import resolve_data_dir
    from fbloop_assets.lib.common.store import open_data_store
    from fbloop_assets.lib.feedback.releases import releases_of

    lake = Lake(resolve_data_dir())
    engine = open_data_store(lake.root)
    days = []
    for day in _days(lake, args.date):
        path = lake.table_path("held_back_feedback", day)
        if not path.exists():
            raise FileNotFoundError(f"held_back_feedback is not materialized for {day}")
        held = pl.read_parquet(path)
        groups = held.group_by("guard", "reason").agg(
            pl.len().alias("rows"), pl.col("event_type").unique().sort().alias("event_types")
        )
        days.append(
            {
                "day": day.isoformat(),
                "rows": held.height,
                "groups": groups.sort("rows", descending=True).to_dicts(),
                "releases": releases_of(engine, day),
                "path": str(path),
            }
        )
    emit({"days": [d for d in days if d["rows"] or d["releases"] or args.date]}, args.json, _render_list)


def _render_list(payload: dict[str, Any]) -> str:
    if not payload["days"]:
        return "nothing held back"
    lines = []
    for d in payload["days"]:
        lines.append(f"{d['day']}: {d['rows']:,} row(s) held back ({d['path']})")
        lines += [
            f"  {g['rows']:,} {'/'.join(g['event_types'])} — {g['guard']}: {g['reason']}" for g in d["groups"]
        ]
        lines += [
            f"  released {r['guard']} {r['subject'] or '(all)'} by {r['actor']} at {r['at']}: {r['reason']}"
            for r in d["releases"]
        ]
    return "\n".join(lines)


def cmd_release(args: argparse.Namespace) -> None:
    import polars as pl

    from fbloop_assets.daily_run import ensure_dagster_home, rematerialize
    from fbloop_assets.lib.common.lake import resolve_data_dir
    from fbloop_assets.lib.common.store import open_data_store
    from fbloop_assets.lib.feedback.releases import apply_releases, release

    lake = Lake(resolve_data_dir())
    path = lake.table_path("held_back_feedback", args.date)
    if not path.exists():
        raise FileNotFoundError(f"held_back_feedback is not materialized for {args.date}")
    held = pl.read_parquet(path)
    row = {"guard": args.guard, "subject": args.subject}
    _, matching = apply_releases(held, [row])
    if matching.is_empty():
        who = f" of {args.subject}" if args.subject else ""
        raise ValueError(
            f"nothing held back by {args.guard}{who} on {args.date} (see `fbloop held-back list`)"
        )
    ensure_dagster_home()
    recorded = release(open_data_store(lake.root), args.date, args.guard, args.subject, args.reason)
    progress(f"releasing {matching.height:,} row(s); materializing held_back_feedback for {args.date} again")
    run_id = rematerialize("held_back_feedback", args.date)
    still = pl.read_parquet(path).height
    emit(
        {"release": recorded, "rows_released": matching.height, "rows_still_held": still, "run_id": run_id},
        args.json,
        lambda p: (
            f"released {p['rows_released']:,} row(s) of {args.date} ({args.guard}); "
            f"{p['rows_still_held']:,} still held back. Datasets built from now on use them (run {run_id})."
        ),
    )


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "held-back",
        help="what the guards held back; release rows an analyst found sound",
        description="Rows a guard held back stay in storage, flagged; list them or release them.",
    )
    actions = group.add_subparsers(dest="held_back_action", metavar="list|release", required=True)
    listing = actions.add_parser("list", help="held-back rows per day, by guard and reason, with releases")
    listing.add_argument("--date", type=iso_date, help="one loop day (default: every day with rows)")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(func=cmd_list)
    rel = actions.add_parser("release", help="release a guard's held-back rows of a day (recorded)")
    rel.add_argument("--date", type=iso_date, required=True, help="the day the rows arrived")
    rel.add_argument(
        "--guard", required=True, choices=("label_quality", "outcome_anomalies"), help="which guard"
    )
    rel.add_argument("--subject", help="only the rows of this reviewer, creator or campaign id")
    rel.add_argument("--reason", required=True, help="why they are sound (stored with the release)")
    rel.add_argument("--json", action="store_true", help="print one JSON document")
    rel.set_defaults(func=cmd_release)
