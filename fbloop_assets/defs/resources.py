"""The resource every asset uses to find fbloop's data directory, database, configuration and secrets."""

from dataclasses import replace
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from fbloop_assets.lib.common.config import FbloopConfig, load_config
from fbloop_assets.lib.common.lake import Lake, resolve_data_dir
from fbloop_assets.lib.common.privacy import load_key
from fbloop_assets.lib.common.store import database_url, open_store


class FbloopResource(dg.ConfigurableResource):
    """Where fbloop keeps its files and which configuration file applies.

    Empty values are resolved when a run starts, not at import: ``$FBLOOP_DATA_DIR`` (else
    ``./data``) and ``$FBLOOP_CONFIG`` (else ``./fbloop.toml``, else the defaults). ``guards``
    ("on" or "off") overrides ``guards.enabled`` of the file for one run (`fbloop demo --guards`).
    ``database_url`` is fbloop's own database (registry, loop decisions, label store, releases,
    tuning, export audit) as a SQLAlchemy URL; empty: ``$FBLOOP_DATABASE_URL`` when the run
    starts, else ``fbloop.sqlite`` in the data directory. Tests replace it with their own.
    """

    data_dir: str = ""
    config_file: str = ""
    guards: str = ""
    database_url: str = ""

    def lake(self) -> Lake:
        return Lake(resolve_data_dir(self.data_dir or None))

    def config(self) -> FbloopConfig:
        config = load_config(Path(self.config_file) if self.config_file else None)
        if self.guards not in ("", "on", "off"):
            raise ValueError(f"resource fbloop: guards must be 'on', 'off' or empty, got {self.guards!r}")
        if self.guards:
            return replace(config, guards=replace(config.guards, enabled=self.guards == "on"))
        return config

    def store(self) -> sa.Engine:
        """fbloop's database, migrated (one engine per URL and process)."""
        return open_store(database_url(self.lake().root, self.database_url))

    def pseudonym_key(self) -> bytes:
        return load_key(self.lake().root)
