"""Dagster as the UI drives it: `dagster-webserver` and `dagster-daemon` on a project folder, and
the GraphQL requests the UI's buttons send (a backfill, a launched run).

Used by the UI-style tests and by `benchmarks/ui_vs_cli.py`. The processes run the project's
code (workspace.yaml) on the instance of ``home`` (a DAGSTER_HOME holding a dagster.yaml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "fbloop"
REPOSITORY = "__repository__"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
  }
}"""

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status }
    ... on PythonError { message }
  }
}"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}"""

LOCATIONS = """
query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


@dataclass
class DagsterUI:
    """A running webserver (and daemon) and how to talk to it like the UI does."""

    url: str
    env: dict[str, str]

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def launch_backfill(self, assets: list[str], partitions: list[str]) -> str:
        """What "Materialize all" → backfill of a partition range sends from the asset graph."""
        params = {
            "assetSelection": [{"path": [a]} for a in assets],
            "partitionNames": partitions,
            "fromFailure": False,
            "tags": [],
        }
        result = self.graphql(LAUNCH_BACKFILL, backfillParams=params)["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {result}")
        return str(result["backfillId"])

    def launch_job_backfill(self, job: str, partitions: list[str]) -> str:
        """What Jobs → the job → Backfill sends for the selected partitions."""
        params = {
            "selector": {
                "partitionSetName": f"{job}_partition_set",
                "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            },
            "partitionNames": partitions,
            "fromFailure": False,
            "tags": [],
        }
        result = self.graphql(LAUNCH_BACKFILL, backfillParams=params)["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {result}")
        return str(result["backfillId"])

    def backfill_status(self, backfill_id: str) -> str:
        result = self.graphql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise RuntimeError(f"no backfill {backfill_id}: {result}")
        return str(result["status"])

    def wait_backfill(self, backfill_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backfill_status(backfill_id)
            runs = self.runs(backfill=backfill_id)
            if status != "REQUESTED" and all(r["status"] in FINISHED for r in runs):
                return status
            time.sleep(2)
        raise TimeoutError(
            f"backfill {backfill_id} still {self.backfill_status(backfill_id)} after {timeout} s"
        )

    def launch_run(self, job: str, partition: str) -> str:
        """What the launchpad sends for one partition of a job."""
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": {},
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        result = self.graphql(LAUNCH_RUN, executionParams=params)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"run not launched: {result}")
        return str(result["run"]["runId"])

    def runs(self, backfill: str | None = None, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Runs (newest first) with their tags as a dict."""
        run_filter: dict[str, Any] = {}
        if backfill is not None:
            run_filter["tags"] = [{"key": "dagster/backfill", "value": backfill}]
        if run_ids is not None:
            run_filter["runIds"] = run_ids
        results = self.graphql(RUNS, filter=run_filter)["runsOrError"]["results"]
        return [r | {"tags": {t["key"]: t["value"] for t in r["tags"]}} for r in results]

    def wait_runs(self, run_ids: list[str], timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs(run_ids=run_ids)
            if len(runs) == len(run_ids) and all(r["status"] in FINISHED for r in runs):
                return runs
            time.sleep(1)
        raise TimeoutError(f"runs {run_ids} not finished after {timeout} s")


def _wait_loaded(ui: DagsterUI, processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("dagster-webserver or dagster-daemon exited while starting")
        try:
            entries = ui.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        except OSError:
            time.sleep(1)
            continue
        if entries and entries[0]["loadStatus"] == "LOADED":
            location = entries[0]["locationOrLoadError"]
            if location["__typename"] != "RepositoryLocation":
                raise RuntimeError(f"code location failed to load: {location}")
            return
        time.sleep(1)
    raise TimeoutError(f"the webserver did not load the code location in {timeout} s")


@contextmanager
def dagster_ui(env: dict[str, str], port: int, logs: Path, timeout: float = 240) -> Iterator[DagsterUI]:
    """Start the webserver on ``port`` and the daemon with ``env`` (DAGSTER_HOME, FBLOOP_*); stop both."""
    full = {**os.environ, **env, "PYTHONPATH": str(PROJECT)}
    logs.mkdir(parents=True, exist_ok=True)
    workspace = str(PROJECT / "workspace.yaml")
    commands = {
        "webserver": [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", workspace],
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("wb")
            # cwd: the folder `dagster dev` would run in, outside the project (its .nux/ and tmp files)
            processes.append(
                subprocess.Popen(command, env=full, cwd=logs, stdout=log, stderr=subprocess.STDOUT)
            )
        ui = DagsterUI(f"http://127.0.0.1:{port}", full)
        _wait_loaded(ui, processes, timeout)
        yield ui
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
