"""Stage 5, weights: fitting candidates, offline evaluation, the registry, rollout (staging,
canary, production) and the model guards."""
