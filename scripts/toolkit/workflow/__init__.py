"""The local workflow runner: a GitHub Actions workflow run on this machine (run_workflow)."""
