"""N-1 compatibility, for real: the live release's code against the schema after the new
migrations.

The live release (the base commit) is checked out in a git worktree. A fresh PostgreSQL
database gets the live release's own schema (its migrations, contract included: what
production has), then the new revisions, contract ones included (the worst case: the schema a
rollback to the live release would meet). The live release's service then starts on it, runs
its own smoke test, answers and takes a rating; its database writes must all succeed. A
migration that would break the running stable version is stopped here, before any traffic
moves.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from contract import http
from contract import settings as names
from contract.database import FEEDBACK, normalize_url
from contract.metrics import DB_QUEUE, DB_WRITES
from scripts.toolkit.metrics import parse_exposition
from scripts.toolkit.migrations.checkout import checkout_env, last_line, run_python
from scripts.toolkit.platform.gitrefs import Revision, add_worktree, remove_worktree
from scripts.toolkit.processes import ManagedProcess, free_port

START_TIMEOUT = 90.0
DRAIN_TIMEOUT = 20.0
RULE = "N-1 compatibility"


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards."""
    name = f"gate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(normalize_url(admin_url)).set(database=name).render_as_string(False)
    finally:
        with contextlib.suppress(Exception), admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Writes:
    """The live service's database writes, as its metrics count them."""

    queued: float = 0.0
    by_outcome: dict[str, float] | None = None  # None: the release keeps no database
    feedback: float = 0.0


def read_writes(url: str) -> Writes:
    samples = parse_exposition(httpx.get(f"{url}{http.METRICS_PATH}", timeout=5).text)
    writes = Writes()
    for name, labels, value in samples:
        if name == DB_QUEUE:
            writes.queued += value
        elif name == DB_WRITES:
            writes.by_outcome = writes.by_outcome or {}
            outcome = labels.get("outcome", "")
            writes.by_outcome[outcome] = writes.by_outcome.get(outcome, 0.0) + value
            if labels.get("table") == FEEDBACK:
                writes.feedback += value
    return writes


def check_live_release(
    *, repo: Path, base: Revision, head_checkout: Path, admin_url: str, workdir: Path
) -> tuple[list[str], str]:
    """Problems (one sentence each) and a one-line account of what ran."""
    worktree = add_worktree(base, parent=workdir / "worktrees", repo=repo)
    try:
        with scratch_database(admin_url) as database:
            return _check(base, worktree, head_checkout, database, workdir)
    finally:
        remove_worktree(worktree, repo=repo)


def _check(
    base: Revision, live: Path, head: Path, database: str, workdir: Path
) -> tuple[list[str], str]:
    settings = {names.DATABASE_URL: database}
    if (live / "app" / "db" / "__main__.py").exists():
        own = run_python(
            live, ["-m", "app.db", "upgrade", "--phase", "contract"], settings=settings
        )
        if own.returncode != 0:
            return [
                f"{RULE}: the live release {base.short} cannot build its own schema "
                f"({last_line(own)}); fix its migrations before shipping on top of them."
            ], ""
    new = run_python(head, ["-m", "app.db", "upgrade", "--phase", "contract"], settings=settings)
    if new.returncode != 0:
        return [
            f"migration: the new revisions fail on the live release's schema ({last_line(new)}); "
            "the database stays at the last revision that succeeded: fix the failing revision "
            "(try it with `python -m app.db upgrade --phase expand` on a copy)."
        ], ""
    token = secrets.token_hex(16)
    port = free_port()
    app = ManagedProcess(
        name=f"live-{base.short}",
        args=[sys.executable, "-m", "app"],
        port=port,
        env=checkout_env(
            live,
            {
                **settings,
                names.PORT: str(port),
                names.VERSION: base.short,
                names.GIT_SHA: base.sha,
                names.ADMIN_TOKEN: token,
                names.DATABASE_AUTO_MIGRATE: "false",
                names.REGISTRY_RELOAD_SECONDS: "0",
                "APP_ENV": "test",
            },
        ),
        log_path=workdir / f"live-{base.short}.log",
        cwd=live,
    ).start()
    try:
        app.wait_http(http.READY_PATH, timeout=START_TIMEOUT)
        return _exercise(base, live, app, token)
    except RuntimeError as exc:
        return [
            f"{RULE}: the live release {base.short} does not start on the migrated schema "
            f"({str(exc).splitlines()[0]}); keep what it reads until it is no longer live."
        ], ""
    finally:
        app.stop(timeout=30)


def _exercise(base: Revision, live: Path, app: ManagedProcess, token: str) -> tuple[list[str], str]:
    problems = []
    if (live / "scripts" / "smoke_test.py").exists():
        smoke = run_python(
            live,
            ["-m", "scripts.smoke_test", "--url", app.url, "--admin-token", token,
             "--questions", "3", "--max-latency", "30"],
            timeout=180,
        )  # fmt: skip
        if smoke.returncode != 0:
            problems.append(
                f"{RULE}: the live release {base.short} fails its smoke test on the migrated "
                f"schema ({last_line(smoke)}); keep what it uses until it is no longer live."
            )
    with httpx.Client(base_url=app.url, timeout=30) as client:
        answer = client.post(http.ANSWER_PATH, json={"question": "How do I roll back?"})
        if answer.status_code == 200:
            client.post(
                http.FEEDBACK_PATH, json={**http.feedback_reference(answer.json()), "rating": "up"}
            )
    writes = _drained(app.url)
    if writes.by_outcome is None:
        return problems, f"the live release {base.short} keeps no database: nothing it uses changed"
    refused = writes.by_outcome.get("failed", 0) + writes.by_outcome.get("dropped", 0)
    if refused:
        marker = "refused by the database: "
        said = [line for line in app.log_tail(200).splitlines() if marker in line]
        reason = said[0].split(marker, 1)[1] if said else "see its log"
        problems.append(
            f"{RULE}: the live release {base.short} cannot write to the schema after the new "
            f"migrations ({refused:.0f} rows refused: {reason}); keep every column it writes "
            "until a release that no longer writes it is fully promoted, then drop it in a "
            "contract revision."
        )
    written = writes.by_outcome.get("written", 0)
    return (
        problems,
        f"the live release {base.short} served, smoke-tested and wrote {written:.0f} rows",
    )


def _drained(url: str) -> Writes:
    """The write counts once the queue is empty and the rating has been written or refused."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    writes = read_writes(url)
    while time.monotonic() < deadline:
        if writes.by_outcome is None or (writes.queued == 0 and writes.feedback >= 1):
            break
        time.sleep(0.2)
        writes = read_writes(url)
    return writes
