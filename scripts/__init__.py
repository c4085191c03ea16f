"""The rollout toolkit: thin command-line entry points over `scripts.toolkit`."""
