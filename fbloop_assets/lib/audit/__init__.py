"""Stage 9, audit trails from versions to data and back."""
