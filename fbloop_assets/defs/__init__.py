"""Dagster wiring of fbloop: one folder per loop stage, each exporting its `defs`."""
