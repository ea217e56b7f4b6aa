"""Dataset stage: versioned FeedbackDatasets and the anonymized training export."""

import dagster as dg

from fbloop_assets.defs.dataset.assets import feedback_dataset
from fbloop_assets.defs.dataset.export import feedback_export

defs = dg.Definitions(assets=[feedback_dataset, feedback_export])
