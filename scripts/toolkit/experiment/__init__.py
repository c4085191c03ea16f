"""A/B experiments on prompt and model versions: per-variant metrics, sample ratio, a winner."""
