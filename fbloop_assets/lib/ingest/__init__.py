"""Stage 1, ingestion: the landing contract, file reading, typing, validation and quarantine of
one day of a source."""
