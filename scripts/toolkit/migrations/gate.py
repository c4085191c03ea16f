"""The migration gate: five checks of a change (base..head), each failure one sentence.

1. pairing: new revisions and application code in one change need `Migration-Pairing: <why>`;
2. revisions: phase markers, one head, shipped revisions untouched, contract after its expand;
3. squawk on the SQL of each new revision;
4. pytest-alembic against a real PostgreSQL;
5. N-1: the live release (base) runs its smoke test on the schema after the new migrations.
Checks 4 and 5 run when the change adds a revision or touches the models (app/db/).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scripts.toolkit.cli import EXIT_FAILED, EXIT_OK, Outcome
from scripts.toolkit.migrations.changes import PAIRING_TRAILER, Change, read_change
from scripts.toolkit.migrations.compat import check_live_release
from scripts.toolkit.migrations.postgres import start_postgres
from scripts.toolkit.migrations.revisions import RevisionFile, check_revisions, read_revisions
from scripts.toolkit.migrations.schema_tests import run_schema_tests
from scripts.toolkit.migrations.squawk import lint
from scripts.toolkit.platform.gitrefs import Revision, add_worktree, remove_worktree, resolve

CHECKS = ("pairing", "revisions", "squawk", "pytest-alembic", "n-1")


@dataclass
class CheckResult:
    """One check: pass, fail or skipped, with its sentences."""

    name: str
    status: str = "pass"
    problems: list[str] = field(default_factory=list)
    note: str = ""


def pairing(change: Change) -> list[str]:
    """Rule 1: never schema and code in one deploy, unless the pairing is said to be safe."""
    if not (change.new_revisions and change.app_code) or change.pairing:
        return []
    code = ", ".join(change.app_code[:3]) + (" ..." if len(change.app_code) > 3 else "")
    return [
        f"schema and code together: this change holds new revisions "
        f"({', '.join(Path(p).name for p in change.new_revisions)}) and application code "
        f"({code}); ship the migration and the code in separate releases, or, when they are "
        f"safe together (an expand the running code ignores), say why in a commit trailer "
        f"`{PAIRING_TRAILER}: <reason>`."
    ]


@contextlib.contextmanager
def checkout_of(repo: Path, head: Revision, workdir: Path) -> Iterator[Path]:
    """`repo` itself when it has `head` checked out, else a worktree of `head`."""
    if resolve("HEAD", repo=repo).sha == head.sha:
        yield repo
        return
    path = add_worktree(head, parent=workdir / "head", repo=repo)
    try:
        yield path
    finally:
        remove_worktree(path, repo=repo)


@contextlib.contextmanager
def postgres_admin(database_url: str | None) -> Iterator[str]:
    """The given server, or a throwaway one started for the gate."""
    if database_url:
        yield database_url
        return
    server = start_postgres()
    try:
        yield server.url()
    finally:
        server.stop()


def migration_gate(
    *, repo: Path, base: str, head: str, database_url: str | None, check: Sequence[str]
) -> Outcome:
    """Run the checks named in `check` (default all) on base..head of `repo`."""
    wanted = tuple(check) or CHECKS
    base_rev, head_rev = resolve(base, repo=repo), resolve(head, repo=repo)
    change = read_change(repo, base_rev.sha, head_rev.sha)
    results = {name: CheckResult(name) for name in CHECKS}
    for name in CHECKS:
        if name not in wanted:
            results[name].status, results[name].note = "skipped", "not asked for"
    touches_schema = bool(change.new_revisions) or any(
        p.startswith("app/db/") for p in change.app_code
    )
    with tempfile.TemporaryDirectory(prefix="migration-gate-") as scratch:
        workdir = Path(scratch)
        with checkout_of(repo, head_rev, workdir) as checkout:
            revisions = read_revisions(checkout)
            shipped = read_revisions_at(repo, base_rev, workdir)
            new = [revisions[p] for p in change.new_revisions if p in revisions]
            _run(results["pairing"], lambda: pairing(change))
            _run(results["revisions"], lambda: edited(change) + check_revisions(
                revisions, shipped, change.new_revisions))  # fmt: skip
            _run(results["squawk"], lambda: lint(checkout, new, workdir / "sql"),
                 note="" if new else "no new revision")  # fmt: skip
            for name in ("pytest-alembic", "n-1"):
                if not touches_schema and results[name].status != "skipped":
                    results[name].status = "skipped"
                    results[name].note = "no new revision and no model change"
            _run(results["pytest-alembic"], lambda: run_schema_tests(checkout))
            if results["n-1"].status != "skipped":
                with postgres_admin(database_url) as admin:
                    problems, note = check_live_release(
                        repo=repo, base=base_rev, head_checkout=checkout, admin_url=admin,
                        workdir=workdir,
                    )  # fmt: skip
                _set(results["n-1"], problems, note)
    return _outcome(base_rev, head_rev, change, list(results.values()))


def read_revisions_at(repo: Path, revision: Revision, workdir: Path) -> dict[str, RevisionFile]:
    """The revision files at `revision` (what has shipped), read from a worktree."""
    path = add_worktree(revision, parent=workdir / "base", repo=repo)
    try:
        return read_revisions(path)
    finally:
        remove_worktree(path, repo=repo)


def edited(change: Change) -> list[str]:
    """Shipped revisions are never edited: a database somewhere has run them as they were."""
    return [
        f"shipped revision: {path} is changed or removed by this change; a revision that has "
        "shipped has run on databases as it was: restore it and write a new revision instead."
        for path in change.edited_revisions
    ]


def _run(result: CheckResult, check: Callable[[], list[str]], *, note: str = "") -> None:
    if result.status == "skipped":
        return
    _set(result, check(), note)


def _set(result: CheckResult, problems: list[str], note: str) -> None:
    result.problems = problems
    result.status = "fail" if problems else "pass"
    result.note = note


def _outcome(base: Revision, head: Revision, change: Change, results: list[CheckResult]) -> Outcome:
    failed = [r for r in results if r.status == "fail"]
    lines = [f"migration gate {base.short}..{head.short}:"]
    for r in results:
        lines.append(f"  {r.name:<15} {r.status}" + (f" ({r.note})" if r.note else ""))
        lines += [f"    - {p}" for p in r.problems]
    rows = "\n".join(
        f"| {r.name} | {r.status} | {'<br>'.join(r.problems) or r.note} |" for r in results
    )
    markdown = (
        f"### Migration gate {base.short}..{head.short}\n\n"
        f"| check | result | detail |\n|---|---|---|\n{rows}"
    )
    return Outcome(
        status="fail" if failed else "pass",
        exit_code=EXIT_FAILED if failed else EXIT_OK,
        data={
            "base": base.sha,
            "head": head.sha,
            "new_revisions": list(change.new_revisions),
            "app_code": list(change.app_code),
            "pairing": change.pairing,
            "checks": [asdict(r) for r in results],
        },
        errors=[p for r in failed for p in r.problems],
        text="\n".join(lines),
        markdown=markdown,
    )
