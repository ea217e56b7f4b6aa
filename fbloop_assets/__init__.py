"""fbloop: the feedback loop of an influencer-recommendation system, as a Dagster project."""
