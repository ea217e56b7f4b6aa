"""Stage 6, serving: suggestions drawn with the weights in force and logged for the next day."""
