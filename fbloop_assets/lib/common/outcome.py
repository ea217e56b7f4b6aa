"""`GuardOutcome`, what every guard returns, and the rules that turn values into verdicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail"]
VERDICTS: tuple[Verdict, ...] = ("pass", "warn", "fail")


@dataclass(frozen=True)
class GuardOutcome:
    """One guard's judgement: JSON-able value and threshold, verdict, a one-line detail.

    ``held_back`` summarises the rows the guard withheld (e.g. ``{"rows": 812, "reviewers":
    ["r-17"]}``); empty when it withheld nothing.
    """

    name: str
    verdict: Verdict
    value: Any
    threshold: Any
    detail: str
    held_back: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def worst(verdicts: list[Verdict]) -> Verdict:
    """The most severe of ``verdicts`` (pass when empty)."""
    return max(verdicts, key=VERDICTS.index, default="pass")


def grade(value: float, warn: float, fail: float, *, higher_is_worse: bool = True) -> Verdict:
    """``fail`` beyond ``fail``, ``warn`` beyond ``warn``, else ``pass`` (strict inequalities)."""
    if higher_is_worse:
        return "fail" if value > fail else "warn" if value > warn else "pass"
    return "fail" if value < fail else "warn" if value < warn else "pass"


# Guards that `guards.enabled = false` never turns into a report: personal data stops a run in
# every configuration (the dataset's and the export's `privacy`, normalized feedback's check).
NEVER_DOWNGRADED = frozenset({"privacy", "no_personal_data"})


def enforce(outcome: GuardOutcome, enabled: bool) -> GuardOutcome:
    """With guards disabled a fail only reports: it becomes a warn and holds nothing back.

    Except the privacy guards (`NEVER_DOWNGRADED`): they fail whatever ``enabled`` says.
    """
    if enabled or not outcome.failed or outcome.name in NEVER_DOWNGRADED:
        return outcome
    detail = f"{outcome.detail} (guards off: not enforced)"
    return replace(outcome, verdict="warn", detail=detail, held_back={})


def held_back_warns(outcome: GuardOutcome) -> GuardOutcome:
    """A guard that failed on rows it held back has dealt with them: a warn, the day goes on without them.

    A fail that held nothing back (e.g. reviewers who disagree as a whole) stays a fail.
    """
    if not outcome.failed or not outcome.held_back.get("rows"):
        return outcome
    detail = f"{outcome.detail} (held back: the day continues on the rest)"
    return replace(outcome, verdict="warn", detail=detail)
