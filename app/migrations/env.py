"""Alembic's environment: one transaction per revision, online or as offline SQL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

from app.db.models import Base
from app.migrations.retired import RETIRED_COLUMNS

config = context.config


def include_object(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Leave out of model comparisons the columns the code no longer maps but a later contract
    revision still has to drop (app/migrations/retired.py)."""
    if kind == "column" and reflected and compare_to is None:
        return name not in RETIRED_COLUMNS.get(obj.table.name, ())
    return True


options: dict[str, Any] = {
    "target_metadata": Base.metadata,
    "transaction_per_migration": True,
    "render_as_batch": True,  # SQLite alters a table by copying it
    "include_object": include_object,
    "compare_type": True,
}

# PostgreSQL: a revision waits at most this long for a lock (it would block every query queued
# behind it) and runs at most this long; squawk asks for both. A longer backfill sets its own.
TIMEOUTS = ("SET lock_timeout = '5s'", "SET statement_timeout = '60s'")


def run() -> None:
    """Set the timeouts, then run the revisions (each in its own transaction)."""
    if context.get_context().dialect.name == "postgresql":
        for statement in TIMEOUTS:
            context.execute(statement)
    context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
    run()
else:
    given = config.attributes.get("connection")  # a Connection, or an Engine (pytest-alembic)
    if isinstance(given, Connection):
        context.configure(connection=given, **options)
        run()
    else:
        engine = given or create_engine(str(config.get_main_option("sqlalchemy.url")))
        with engine.connect() as own:
            context.configure(connection=own, **options)
            run()
            own.commit()
        if given is None:
            engine.dispose()
