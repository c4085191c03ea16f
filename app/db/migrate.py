"""Alembic, driven from code: the configuration, each revision's phase, and phased upgrades.

Every revision in app/migrations/versions/ says `phase = "expand"` or `phase = "contract"`.
`upgrade(url, "expand")` applies pending revisions up to (not including) the first pending
contract revision: what may run before a rollout, while the previous release still serves.
`upgrade(url, "contract")` applies everything, contract revisions included: only once the
previous release is fully promoted and no pod runs code that needs what they remove.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
Phase = Literal["expand", "contract"]
PHASES: tuple[Phase, ...] = ("expand", "contract")


class MigrationError(Exception):
    """A migration cannot run as asked; the message says what to do."""


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """Alembic's configuration for app/migrations, for `url` or an open `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def phase_of(script: Script) -> Phase:
    """The revision's `phase` marker; a revision without one is refused."""
    phase = getattr(script.module, "phase", None)
    if phase not in PHASES:
        raise MigrationError(
            f"revision {script.revision} ({Path(script.path).name}) has no phase marker; "
            'add `phase = "expand"` or `phase = "contract"` to it.'
        )
    return phase  # type: ignore[no-any-return]


def chain(scripts: ScriptDirectory) -> list[Script]:
    """The revisions from the first to the head; two heads are refused."""
    heads = scripts.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
            "make one revision follow the other (or `alembic merge` them) before deploying."
        )
    return list(reversed(list(scripts.walk_revisions())))


@dataclass(frozen=True)
class Plan:
    """Where the database is, and where an upgrade of one phase takes it."""

    current: str | None
    target: str | None
    pending: tuple[str, ...]
    held_back: tuple[str, ...]  # contract revisions (and what follows them) left for later


def plan(connection: Connection, phase: Phase) -> Plan:
    """What `upgrade(phase)` would apply to the database behind `connection`."""
    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = chain(scripts)
    current = MigrationContext.configure(connection).get_current_revision()
    ids = [s.revision for s in revisions]
    if current is not None and current not in ids:
        # A newer release migrated this database: this build leaves it alone.
        return Plan(current, current, (), ())
    start = ids.index(current) + 1 if current is not None else 0
    pending = revisions[start:]
    stop = len(pending)
    if phase == "expand":
        stop = next((i for i, s in enumerate(pending) if phase_of(s) == "contract"), stop)
    for s in pending:
        phase_of(s)  # every pending revision carries its marker
    applied = pending[:stop]
    target = applied[-1].revision if applied else current
    return Plan(
        current,
        target,
        tuple(s.revision for s in applied),
        tuple(s.revision for s in pending[stop:]),
    )


def upgrade(engine: Engine, phase: Phase) -> Plan:
    """Apply the revisions `phase` allows, each in its own transaction: a revision that fails
    halfway is rolled back and the database stays at the last one that succeeded."""
    with engine.begin() as connection:
        steps = plan(connection, phase)
    if steps.pending:
        # Not one outer transaction: env.py commits each revision on its own.
        with engine.connect() as connection:
            try:
                command.upgrade(alembic_config(connection=connection), str(steps.target))
            except CommandError as exc:
                raise MigrationError(f"{exc}.") from exc
            connection.commit()
    return steps


def offline_sql(revision: str, *, dialect: str = "postgresql") -> str:
    """The SQL that upgrading to `revision` from the one before it runs, for `dialect`."""
    scripts = ScriptDirectory.from_config(alembic_config())
    script = scripts.get_revision(revision)
    if script is None:
        raise MigrationError(f"there is no revision {revision}.")
    down = script.down_revision
    if isinstance(down, tuple):
        raise MigrationError(f"revision {revision} merges heads; give it one down_revision.")
    buffer = io.StringIO()
    config = alembic_config(f"{dialect}://")
    config.output_buffer = buffer
    command.upgrade(config, f"{down}:{revision}" if down else revision, sql=True)
    # Alembic's own bookkeeping table is not the revision's to answer for.
    return re.sub(r"CREATE TABLE alembic_version \(.*?\);\n", "", buffer.getvalue(), flags=re.S)


def downgrade(engine: Engine, target: str) -> str | None:
    """Undo revisions down to `target` (a revision id, or `base`), each in its own transaction;
    the revision the database is at afterwards."""
    with engine.connect() as connection:
        try:
            command.downgrade(alembic_config(connection=connection), target)
        except CommandError as exc:
            raise MigrationError(f"{exc}.") from exc
        connection.commit()
        return MigrationContext.configure(connection).get_current_revision()
