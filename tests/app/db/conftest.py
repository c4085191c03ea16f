"""Fixtures of the database tests: a real PostgreSQL (tests/support/postgres.py), and
pytest-alembic's runner (its plugin is off: pyproject.toml says why)."""

from __future__ import annotations

from pytest_alembic.plugin.fixtures import alembic_runner

from tests.support.postgres import postgres_server, postgres_url

__all__ = ["alembic_runner", "postgres_server", "postgres_url"]
