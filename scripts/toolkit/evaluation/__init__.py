"""Offline quality gate: a candidate and a baseline arm answer the golden dataset in one run."""
