"""Reference AI service: answers questions through versioned prompts and models."""
