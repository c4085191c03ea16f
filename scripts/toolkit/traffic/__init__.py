"""Traffic backends: how a code rollout shifts traffic (local router, Gateway API, ...)."""
