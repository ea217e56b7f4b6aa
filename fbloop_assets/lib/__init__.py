"""Pure logic of fbloop: no Dagster import below this folder."""
