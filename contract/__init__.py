"""The service contract: what the rollout toolkit and any service it deploys agree on."""
