"""pytest-alembic against a real PostgreSQL: one head, upgrade, downgrade, models match schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.config import Config
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, create_engine

from app.db.migrate import alembic_config as service_config

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> Config:
    """The service's own Alembic configuration (app/db/migrate.py)."""
    return service_config()


@pytest.fixture
def alembic_engine(postgres_url: str) -> Iterator[Engine]:
    """A fresh PostgreSQL database per test."""
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()
