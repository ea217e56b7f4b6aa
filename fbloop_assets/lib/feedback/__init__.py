"""Stage 2, feedback: normalization into the one feedback schema, creator performance, the
expectation suite and the data guards that hold rows back."""
