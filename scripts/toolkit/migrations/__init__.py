"""The migration gate: pairing, squawk, pytest-alembic on PostgreSQL, and N-1 compatibility."""
