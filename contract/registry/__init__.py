"""The prompt and model registry: its file schema, its loader and its safe-writing rules."""
