"""A real PostgreSQL for the tests: one server per session, a fresh database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from scripts.toolkit.migrations.postgres import Postgres, start_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """Debian's PostgreSQL started from a temporary folder on a free port, stopped by PID."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """The URL of a new, empty database on the session's server."""
    return postgres_server.create(f"test_{uuid.uuid4().hex[:12]}")
