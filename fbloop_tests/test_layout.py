"""The layout is a contract: lib/ is pure and ordered by loop stage, modules and functions stay small.

- `lib/` imports no Dagster and nothing of the CLI, the web app, the Dagster wiring or the simulator.
- A stage of `lib/` imports only `common` and the stages before it (`STAGES`, in loop order), so
  data flows one way and a stage can be read without the ones after it.
- The simulator is imported only by the demo, its commands, the benchmarks and the tests: nothing
  in the product depends on the synthetic world.
- No module over 400 lines (300 in `lib/`), no function over 80.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fbloop_assets"
LIB = PACKAGE / "lib"
STAGES = (
    "common",
    "ingest",
    "feedback",
    "scoring",
    "dataset",
    "weights",
    "serving",
    "labeling",
    "tuning",
    "audit",
)
NOT_IN_LIB = (
    "dagster",
    "fbloop_assets.cli",
    "fbloop_assets.web",
    "fbloop_assets.defs",
    "fbloop_assets.simulate",
)
SIMULATOR_USERS = ("fbloop_assets.demo", "fbloop_assets.cli.demo", "fbloop_assets.simulate")
MAX_LINES, MAX_LIB_LINES, MAX_FUNCTION_LINES = 400, 300, 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_lib_imports_no_dagster_cli_web_wiring_or_simulator() -> None:
    offending = [
        f"{_module_name(p)} imports {name}"
        for p in _python_files(LIB)
        for name in sorted(_imports(p))
        if any(_within(name, banned) for banned in NOT_IN_LIB)
    ]
    assert not offending, "\n".join(offending)


def test_every_lib_module_belongs_to_a_stage() -> None:
    strays = [
        p.relative_to(LIB).as_posix()
        for p in _python_files(LIB)
        if p.parent != LIB and p.relative_to(LIB).parts[0] not in STAGES
    ]
    strays += [p.name for p in LIB.glob("*.py") if p.name != "__init__.py"]
    assert not strays, f"modules outside the stages {STAGES}: {strays}"


def test_a_stage_imports_only_common_and_the_stages_before_it() -> None:
    offending = []
    for path in _python_files(LIB):
        stage = path.relative_to(LIB).parts[0]
        if stage not in STAGES:
            continue
        for name in sorted(_imports(path)):
            if not _within(name, "fbloop_assets.lib") or name == "fbloop_assets.lib":
                continue
            target = name.split(".")[2]
            if target in STAGES and STAGES.index(target) > STAGES.index(stage):
                offending.append(f"{_module_name(path)} ({stage}) imports {name} ({target})")
    assert not offending, "\n".join(offending)


def test_the_simulator_is_imported_only_by_the_demo_benchmarks_and_tests() -> None:
    offending = [
        f"{_module_name(p)} imports {name}"
        for p in _python_files(PACKAGE)
        if not any(_within(_module_name(p), user) for user in SIMULATOR_USERS)
        for name in sorted(_imports(p))
        if _within(name, "fbloop_assets.simulate")
    ]
    assert not offending, "\n".join(offending)


@pytest.mark.parametrize("folder", ["fbloop_assets", "fbloop_tests", "benchmarks"])
def test_modules_and_functions_stay_small(folder: str) -> None:
    too_long = []
    for path in _python_files(ROOT / folder):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        limit = MAX_LIB_LINES if path.is_relative_to(LIB) else MAX_LINES
        if lines > limit:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines (limit {limit})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)
