"""Ingestion stage: one asset per landing source, validated, with rejects kept for quarantine."""

import dagster as dg

from fbloop_assets.defs.ingest.assets import ingestion_assets

defs = dg.Definitions(assets=ingestion_assets)
