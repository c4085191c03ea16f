"""squawk on the PostgreSQL SQL of each new revision (Alembic offline mode, `--sql`).

Each finding becomes one sentence: the rule, the statement's line, and what to do instead in
expand/contract terms. A contract revision exists to drop what the previous release stopped
using, so squawk's bans on dropping columns and tables do not apply to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404  # squawk with a fixed argv, never a shell
import sys
from pathlib import Path

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.migrations.checkout import last_line, run_python
from scripts.toolkit.migrations.revisions import RevisionFile

PG_VERSION = "15"
CONTRACT_ALLOWS = ("ban-drop-column", "ban-drop-table")
INSTEAD = {
    "renaming-column": "rename over three releases instead: add the new column and write both "
    "(expand), backfill it, then drop the old one (contract)",
    "renaming-table": "create the new table and write both (expand), backfill, then drop the "
    "old one (contract)",
    "ban-drop-column": "drop a column only in a contract revision, one release after the code "
    "stopped using it",
    "ban-drop-table": "drop a table only in a contract revision, one release after the code "
    "stopped using it",
    "adding-not-nullable-field": "add the column nullable (or with a default), backfill it, and "
    "set NOT NULL in a later revision",
    "adding-required-field": "add the column nullable (or with a default), backfill it, and set "
    "NOT NULL in a later revision",
    "changing-column-type": "add a column of the new type, write both, backfill, then drop the "
    "old one (expand/contract)",
    "require-concurrent-index-creation": "create the index CONCURRENTLY, in an autocommit block "
    "of its own revision",
}


def squawk_binary() -> str:
    """squawk beside this interpreter (the venv's, from squawk-cli), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if found is None:
        raise ToolkitError("squawk is not installed; run `./dev setup` (PyPI squawk-cli).")
    return found


def lint(checkout: Path, revisions: list[RevisionFile], workdir: Path) -> list[str]:
    """One sentence per squawk finding in the SQL of `revisions` (of `checkout`)."""
    problems = []
    workdir.mkdir(parents=True, exist_ok=True)
    for r in revisions:
        if r.revision is None:
            continue
        made = run_python(checkout, ["-m", "app.db", "sql", "--revision", r.revision], timeout=120)
        if made.returncode != 0:
            problems.append(
                f"squawk: the SQL of revision {r.revision} cannot be rendered offline "
                f"({last_line(made)}); make it run without a database (no reads in upgrade())."
            )
            continue
        sql = workdir / f"{r.revision}.sql"
        sql.write_text(made.stdout, encoding="utf-8")
        problems += _findings(r, sql)
    return problems


def _findings(r: RevisionFile, sql: Path) -> list[str]:
    args = [squawk_binary(), "--reporter", "json", "--pg-version", PG_VERSION, str(sql)]
    if r.phase == "contract":
        args[1:1] = ["--exclude", ",".join(CONTRACT_ALLOWS)]
    done = subprocess.run(  # noqa: S603  # nosec B603  # squawk, argv list
        args, capture_output=True, text=True, timeout=60, check=False
    )
    try:
        findings = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise ToolkitError(f"squawk printed no JSON report: {done.stderr.strip()[:300]}") from exc
    sentences = []
    lines = sql.read_text(encoding="utf-8").splitlines()
    for f in findings:
        rule = f.get("rule_name", "squawk")
        line = int(f.get("line", 0))
        statement = lines[line].strip() if 0 <= line < len(lines) else ""
        instead = INSTEAD.get(rule) or (f.get("help") or "see squawk's rule page").rstrip(".")
        sentences.append(
            f"squawk {rule}: revision {r.revision} ({Path(r.path).name}) runs `{statement}`: "
            f"{f.get('message', '').rstrip('.')}; {instead}."
        )
    return sentences
