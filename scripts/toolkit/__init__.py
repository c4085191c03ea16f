"""The importable library behind the rollout scripts."""
