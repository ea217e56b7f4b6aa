"""Shared by every stage: configuration, the lake (paths, atomic writes), fbloop's database,
privacy primitives, statistics helpers and the guard outcome type."""
