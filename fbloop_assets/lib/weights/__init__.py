"""Stage 5, weights: fitting candidates, offline evaluation, the registry, rollout (staging, canary, production), the model guards."""
