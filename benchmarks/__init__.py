"""Benchmarks: scripts that print a table, with ratios against a baseline from the same run."""
