"""The embedded model: a deterministic extractive answerer behind an OpenAI-compatible HTTP API."""
