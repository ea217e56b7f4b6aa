"""Stage 8, campaign tuning suggestions and the owners' decisions."""
