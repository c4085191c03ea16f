"""Alembic migrations of the service's database (phases: DEPLOYING.md)."""
