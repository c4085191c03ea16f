"""Migration gate: expand/contract rules, squawk, pytest-alembic and N-1 compatibility.

Checks the change base..head (base: the live release's commit; head: the one to deploy):

  pairing         new revisions and application code (app/, contract/) in one change fail
                  unless a commit says why they are safe together: `Migration-Pairing: <why>`
  revisions       every revision says phase = "expand" or "contract"; one head; shipped
                  revisions are never edited; a contract revision names a shipped expand one
  squawk          the PostgreSQL SQL of each new revision (Alembic --sql), contract revisions
                  allowed to drop
  pytest-alembic  single head, upgrade, downgrade, models match the schema, on a real PostgreSQL
  n-1             the live release, from a git worktree of base, runs its smoke test and writes
                  to the schema after the new migrations

Examples:
  python -m scripts.migration_gate --base origin/main --head HEAD
  python -m scripts.migration_gate --base "$LIVE_SHA" --head "$GITHUB_SHA" --output json
  python -m scripts.migration_gate --base HEAD~1 --head HEAD --check pairing --check squawk

Without --database-url a throwaway PostgreSQL (Debian's, ./dev setup) is started on 127.0.0.1.
Exit codes: 0 every check passed (or was skipped), 1 a check failed (each failure one sentence
naming the rule and what to do instead), 2 usage or configuration error.
DEPLOYING.md, "Database migrations: expand, migrate, contract", has the rules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.files import REPO_ROOT
from scripts.toolkit import cli
from scripts.toolkit.migrations.gate import CHECKS, migration_gate


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.migration_gate", __doc__.split("\n\n")[0])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n\n".join(__doc__.split("\n\n")[1:])
    option = cli.option
    option(parser, "--base", default="HEAD~1",
           help="the live release's commit (what production runs now)")  # fmt: skip
    option(parser, "--head", default="HEAD", help="the commit to deploy")
    option(parser, "--repo", type=Path, default=REPO_ROOT, default_text="this repository",
           help="the git repository")  # fmt: skip
    option(
        parser, "--database-url",
        help="a PostgreSQL server URL (with a user that may create databases) for the N-1 "
        "check; default: start a throwaway one",
    )  # fmt: skip
    option(parser, "--check", repeat=True, choices=CHECKS, help="run only these checks")
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    return migration_gate(**cli.options(args))


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
