"""Stage 7, labeling: the label store, reviewers, the review queue and label imports."""
