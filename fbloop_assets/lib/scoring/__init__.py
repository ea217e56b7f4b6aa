"""Stage 3, the scorer: the feature vector φ, the Plackett-Luce serving policy and the scoring
context of a serving day."""
