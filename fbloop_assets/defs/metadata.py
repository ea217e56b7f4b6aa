"""Small helpers that turn lib results into Dagster metadata users read in the UI."""

from datetime import date

import dagster as dg
import polars as pl

from fbloop_assets.lib.common.outcome import GuardOutcome


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def column_schema(schema: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()])


def counts_table(counts: dict[str, int], key: str = "reason") -> dg.MetadataValue:
    lines = [f"| {key} | rows |", "|---|---:|", *(f"| {k} | {v:,} |" for k, v in counts.items())]
    return dg.MetadataValue.md("\n".join(lines) if counts else "nothing")


def preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """A Markdown preview of the first rows, long values cut."""
    head = frame.head(rows).with_columns(pl.all().cast(pl.String).str.slice(0, 80))
    if not head.height:
        return dg.MetadataValue.md("(empty)")
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def md_table(headers: list[str], rows: list[list[object]]) -> dg.MetadataValue:
    """A Markdown table; floats with 4 decimals, None as a dash."""

    def cell(value: object) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _numbers(prefix: str, value: object) -> dict[str, dg.MetadataValue]:
    """Every number in ``value`` (a number, or dicts of them, nested) as a float entry the UI plots."""
    if isinstance(value, bool | int | float):
        return {prefix: dg.MetadataValue.float(float(value))}
    if isinstance(value, dict):
        return {k: v for key, inner in value.items() for k, v in _numbers(f"{prefix}/{key}", inner).items()}
    return {}


def _json_or_plain(value: object) -> dg.MetadataValue:
    if isinstance(value, dict | list):
        return dg.MetadataValue.json(value)
    if isinstance(value, bool | int | float):
        return dg.MetadataValue.float(float(value))
    return dg.MetadataValue.text("–" if value is None else str(value))


def check_result(
    outcome: GuardOutcome, enabled: bool, partition: str, *, decides: bool = False
) -> dg.AssetCheckResult:
    """A guard's outcome (already `enforce`d) as a Dagster check result.

    A fail is ERROR (the run stops: someone must act) unless the check ``decides`` about the
    candidate (evidence, step size, no regression, exposure): a candidate that is not promoted is a
    normal day, so its fail is WARN and `production_weights` records the decision. Value and
    threshold are numeric entries (``value``, ``value/<key>``, ``threshold/<key>``) besides their
    JSON, so the UI plots them over partitions; ``partition`` names the day judged.
    """
    severity = dg.AssetCheckSeverity.ERROR if outcome.failed and not decides else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.detail,
        metadata={
            "partition": partition,
            "verdict": outcome.verdict,
            "value": _json_or_plain(outcome.value),
            "threshold": _json_or_plain(outcome.threshold),
            **_numbers("value", outcome.value),
            **_numbers("threshold", outcome.threshold),
            "held_back": dg.MetadataValue.json(outcome.held_back),
            "held_back_rows": dg.MetadataValue.int(int(outcome.held_back.get("rows", 0))),
            "guards_enabled": enabled,
        },
    )
