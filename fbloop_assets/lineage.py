"""Dagster's event log as the audit's source of runs and materializations (`lib.audit.EventLog`)."""

from typing import Any

import dagster as dg


class InstanceEventLog:
    """Materialization records of the Dagster instance (SQLite or PostgreSQL alike)."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance

    @staticmethod
    def _as_dict(record: Any) -> dict[str, Any]:
        materialization = record.asset_materialization
        return {
            "run_id": record.run_id,
            "storage_id": record.storage_id,
            "timestamp": record.timestamp,
            "partition": materialization.partition if materialization else None,
            "metadata": {
                k: v.value for k, v in (materialization.metadata if materialization else {}).items()
            },
        }

    def materialization(
        self, asset: str, partition: str, before_storage_id: int | None
    ) -> dict[str, Any] | None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(asset),
                asset_partitions=[partition],
                before_storage_id=before_storage_id,
            ),
            limit=1,
        ).records
        return self._as_dict(records[0]) if records else None

    def dataset_materialization(self, dataset_version: str, loop_day: str) -> dict[str, Any] | None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("feedback_dataset"), asset_partitions=[loop_day]),
            limit=100,
        ).records
        for record in records:  # newest first: a re-run of the day may have built another version
            found = self._as_dict(record)
            if found["metadata"].get("dataset_version") == dataset_version:
                return found
        return None
