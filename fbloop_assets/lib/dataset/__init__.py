"""Stage 4, FeedbackDataset versions: building, withheld rows, the dataset guards, the training export."""
