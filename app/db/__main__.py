"""`python -m app.db`: migrate the service's database by phase, or print a revision's SQL.

  python -m app.db upgrade --phase expand     # before a rollout (the Kubernetes Job runs this)
  python -m app.db upgrade --phase contract   # after full promotion: contract revisions too
  python -m app.db current                    # the database's revision and what is pending
  python -m app.db sql --revision 0002        # the PostgreSQL SQL of one revision (offline)
  python -m app.db downgrade --to 0003        # undo revisions above 0003 (DEPLOYING.md first)

The database is APP_DATABASE_URL (or --database-url). Exit codes: 0 done, 1 the migration
failed (the database stays at the last revision that succeeded), 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import Settings
from app.db.engine import build_engine
from app.db.migrate import PHASES, MigrationError, downgrade, offline_sql, plan, upgrade
from contract.validation import first_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.db",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]) if __doc__ else None,
    )
    parser.add_argument("--database-url", help="the database (default: APP_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="apply the revisions a phase allows")
    up.add_argument("--phase", choices=PHASES, required=True)
    now = commands.add_parser("current", help="the database's revision and what is pending")
    now.add_argument("--phase", choices=PHASES, default="contract")
    sql = commands.add_parser("sql", help="a revision's SQL for PostgreSQL, without a database")
    sql.add_argument("--revision", required=True)
    down = commands.add_parser("downgrade", help="undo the revisions above one")
    down.add_argument("--to", required=True, help="the revision to stay at (or `base`)")
    return parser


def run(args: argparse.Namespace) -> str:
    """Do what `args` ask; the sentence to print (the SQL, for `sql`)."""
    if args.command == "sql":
        return offline_sql(args.revision)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    engine = build_engine(Settings(**overrides).database_url)
    if args.command == "current":
        with engine.connect() as connection:
            steps = plan(connection, args.phase)
        pending, held = ", ".join(steps.pending), ", ".join(steps.held_back)
        return (
            f"current: {steps.current or 'empty'}; pending ({args.phase}): {pending or 'none'}; "
            f"held back: {held or 'none'}"
        )
    if args.command == "downgrade":
        return f"downgraded: now at {downgrade(engine, args.to) or 'empty'}"
    steps = upgrade(engine, args.phase)
    done = ", ".join(steps.pending) or "nothing to apply"
    held = f"; held back until contract: {', '.join(steps.held_back)}" if steps.held_back else ""
    return f"{args.phase}: {done} (now at {steps.target or 'empty'}){held}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args))
    except ValidationError as exc:
        print(f"error: invalid setting: {first_error(exc)}", file=sys.stderr)
        return 2
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(
            f"error: the migration stopped ({reason}); the database stays at the last revision "
            "that succeeded: fix the revision or the database and run it again.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
