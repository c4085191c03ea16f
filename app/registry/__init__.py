"""Prompt and model versions: schema, loading, validation, hot reload and sticky assignment."""
