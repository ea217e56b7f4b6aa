"""The lint and type gate runs with the tests: ruff (lint and format) and mypy over the project."""

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
CODE = ["fbloop_assets", "fbloop_tests", "benchmarks"]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *CODE],
        ["ruff", "format", "--check", *CODE],
        ["mypy", "fbloop_assets", "benchmarks"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_passes_the_gate(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
