"""pytest-alembic's built-in tests (tests/app/db/test_migrations.py) of a checkout, on a real
PostgreSQL that the tests start: one head, upgrade, downgrade, models match the schema."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.toolkit.migrations.checkout import run_python

TESTS = "tests/app/db/test_migrations.py"
INSTEAD = {
    "test_single_head_revision": "set the down_revision of the newer revision to the other, so "
    "there is one chain",
    "test_upgrade": "fix the revision that fails to apply on an empty database",
    "test_up_down_consistency": "make each downgrade() undo its upgrade() so code can be rolled "
    "back with its schema",
    "test_model_definitions_match_ddl": "write a revision for the model change (or, for a "
    "column the code stopped mapping, name it in app/migrations/retired.py until its contract "
    "revision)",
}


def run_schema_tests(checkout: Path) -> list[str]:
    """One sentence per failed test."""
    if not (checkout / TESTS).exists():
        return [f"pytest-alembic: {TESTS} is missing; restore it (the gate runs it)."]
    done = run_python(
        checkout, ["-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider", "--no-header", "-rf"],
        settings={"COLUMNS": "400"},  # pytest cuts the summary's reasons to the terminal width
        timeout=600,
    )  # fmt: skip
    if done.returncode == 0:
        return []
    problems = []
    for match in re.finditer(r"^FAILED \S+::(\w+)(?: - (.*))?$", done.stdout, re.M):
        test, why = match.group(1), (match.group(2) or "").strip().rstrip(".")
        instead = INSTEAD.get(test, "see the test's output")
        problems.append(f"pytest-alembic {test}: {why or 'failed'}; {instead}.")
    if not problems:
        tail = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:]
        problems.append(f"pytest-alembic did not run ({' '.join(tail)}); run {TESTS} locally.")
    return problems
