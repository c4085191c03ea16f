"""The engine for APP_DATABASE_URL: SQLite by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# How long a write waits for PostgreSQL to accept a connection, and for SQLite's lock, before
# the batch is retried later: the writer thread waits, never a request.
CONNECT_TIMEOUT_SECONDS = 2


def build_engine(url: str) -> Engine:
    """An engine that fails fast when the database is away (the writer retries later)."""
    parsed = make_url(url)
    args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # A folder that cannot be made (read-only, a file in the way) is the writer's to
            # report on its first write; the service starts and answers regardless.
            with contextlib.suppress(OSError):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        args = {"connect_args": {"timeout": CONNECT_TIMEOUT_SECONDS}}
    elif parsed.get_backend_name() == "postgresql":
        args = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}, "pool_size": 2}
    # PostgreSQL: a pooled connection may have died with the server; a file cannot.
    args["pool_pre_ping"] = parsed.get_backend_name() == "postgresql"
    engine = create_engine(url, **args)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(connection: Any, _: Any) -> None:
    # Several local instances share one file: WAL lets readers (the report) read while they
    # write; with WAL, synchronous=NORMAL never corrupts the file and skips a sync per commit
    # (a power cut may lose the last commits, as a crash loses the queue).
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
