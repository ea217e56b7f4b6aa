"""Guards: the checks that throttle the feedback loop, as pure functions.

Each guard returns a `GuardOutcome` (value, threshold, verdict pass / warn / fail, a one-line
detail naming the cause, and what it held back). `defs/` turns them into blocking Dagster asset
checks: a fail is an ERROR that stops the day's run before `production_weights`, a warn reports
without blocking. With ``guards.enabled = false`` every fail is reported as a warn (`enforce`).

- `outcome`: the result type and its helpers.
- `data`: the day's incoming feedback: label quality (agreement, one reviewer's flood) and
  outcome anomalies (bought engagement); they name the rows to hold back.
- `dataset`: a FeedbackDataset version: evidence per segment, completeness, drift, privacy.
- `model`: a candidate against production: step size, no regression, exposure.
"""
