"""`python -m scripts.migration_gate`: the worked rename passes release by release; the wrong
way, two heads, a contract shipped with its expand, a revision failing halfway are caught, each
with one sentence naming the rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from scripts.migration_gate import main
from scripts.toolkit.migrations.postgres import Postgres
from tests.support.postgres import postgres_server
from tests.support.service import REPO

pytestmark = pytest.mark.integration
__all__ = ["postgres_server"]  # the fixture, used below

QUICK = ["--check", "pairing", "--check", "revisions", "--check", "squawk"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],  # noqa: S607  # git from PATH
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def release(subject: str) -> str:
    """The commit of the worked example whose subject starts with `subject`."""
    found = git(REPO, "log", "--format=%H", "--fixed-strings", f"--grep={subject}", "-1")
    assert found, f"no commit says {subject!r}"
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A clone of this repository's committed history, to commit changes to."""
    clone = tmp_path / "repo"
    git(REPO, "clone", "--quiet", "--shared", str(REPO), str(clone))
    git(clone, "config", "user.email", "gate@example.com")
    git(clone, "config", "user.name", "gate test")
    return clone


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        git(repo, "add", name)
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--output", "json"])
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["exit_code"] == code
    return code, envelope


def problems(envelope: dict[str, Any], check: str) -> list[str]:
    (found,) = [c for c in envelope["data"]["checks"] if c["name"] == check]
    return list(found["problems"])


def revision(number: str, down: str, body: str, *, phase: str = "expand", extra: str = "") -> str:
    return f'''"""Test revision {number}."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{number}"
down_revision = "{down}"
branch_labels = None
depends_on = None
phase = "{phase}"
{extra}


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
'''


def test_the_worked_rename_passes_the_gate_release_by_release(
    capsys: pytest.CaptureFixture[str],
) -> None:
    expand = release("Rename answer_log.cost to cost_usd, release 1 of 3")
    backfill = release("Rename answer_log.cost to cost_usd, release 2 of 3")
    contract = release("Rename answer_log.cost to cost_usd, release 3 of 3")
    for base, head in ((f"{expand}~1", expand), (f"{backfill}~1", backfill)):
        code, envelope = gate(capsys, "--base", base, "--head", head, *QUICK)
        assert code == 0, envelope["errors"]
        assert envelope["data"]["pairing"]  # schema with code: said to be safe, and why
    code, envelope = gate(capsys, "--base", backfill, "--head", contract)
    assert code == 0, envelope["errors"]
    assert envelope["data"]["pairing"] is None  # the contract release is a migration alone
    assert {c["name"]: c["status"] for c in envelope["data"]["checks"]} == dict.fromkeys(
        ("pairing", "revisions", "squawk", "pytest-alembic", "n-1"), "pass"
    )


def test_dropping_a_column_the_live_release_writes_is_stopped_before_traffic_moves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The contract shipped while release 1, which still writes `cost`, is live.
    expand = release("Rename answer_log.cost to cost_usd, release 1 of 3")
    contract = release("Rename answer_log.cost to cost_usd, release 3 of 3")
    code, envelope = gate(capsys, "--base", expand, "--head", contract, "--check", "n-1")
    assert code == 1
    (sentence,) = problems(envelope, "n-1")
    assert sentence.startswith(f"N-1 compatibility: the live release {expand[:7]}")
    assert "cannot write to the schema after the new migrations" in sentence
    assert "cost" in sentence and "then drop it in a contract revision" in sentence


def test_a_rename_in_one_step_is_caught_naming_each_rule(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    live = git(repo, "rev-parse", "HEAD")
    models = (repo / "app/db/models.py").read_text().replace("cost_usd:", "spend_usd:")
    rows = (repo / "contract/database.py").read_text().replace('"cost_usd"', '"spend_usd"')
    head = commit(
        repo,
        {
            "app/migrations/versions/0005_rename.py": revision(
                "0005", "0004",
                '    op.alter_column("answer_log", "cost_usd", new_column_name="spend_usd")',
            ),
            "app/db/models.py": models,
            "contract/database.py": rows,
        },
        "Rename cost_usd to spend_usd in one step",
    )  # fmt: skip
    code, envelope = gate(capsys, "--repo", str(repo), "--base", live, "--head", head)
    assert code == 1
    (pairing,) = problems(envelope, "pairing")
    assert pairing.startswith("schema and code together: this change holds new revisions")
    assert "Migration-Pairing: <reason>" in pairing
    (squawk,) = problems(envelope, "squawk")
    assert squawk.startswith("squawk renaming-column: revision 0005")
    assert "rename over three releases instead" in squawk
    (n_1,) = problems(envelope, "n-1")
    assert n_1.startswith(f"N-1 compatibility: the live release {live[:7]} cannot write")
    assert "cost_usd" in n_1
    assert envelope["data"]["pairing"] is None


def test_a_contract_shipped_with_its_expand_two_heads_and_edits_are_refused(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    live = git(repo, "rev-parse", "HEAD")
    add = '    op.add_column("feedback", sa.Column("comment", sa.Text(), nullable=True))'
    drop = '    op.drop_column("feedback", "comment")'
    head = commit(
        repo,
        {
            "app/migrations/versions/0005_comment.py": revision("0005", "0004", add),
            "app/migrations/versions/0006_drop_comment.py": revision(
                "0006", "0005", drop, phase="contract", extra='expand_revision = "0005"'
            ),
            "app/migrations/versions/0007_other.py": revision("0007", "0005", "    pass"),
            "app/migrations/versions/0008_unmarked.py": revision(
                "0008", "0007", "    pass", phase="later"
            ),
            "app/migrations/versions/0001_answer_log_and_feedback.py": "# edited\n",
        },
        "Comment on feedback, and its removal",
    )
    code, envelope = gate(
        capsys, "--repo", str(repo), "--base", live, "--head", head, "--check", "revisions"
    )
    assert code == 1
    found = problems(envelope, "revisions")
    assert [p.split(":")[0] for p in found] == [
        "shipped revision",
        "phase marker",
        "single head",
        "contract after expand",
    ]
    assert "ship the expand" in found[3] and "in a later release" in found[3]
    assert "0006, 0008" in found[2]


def test_a_migration_failing_halfway_stops_the_gate_and_leaves_the_last_good_revision(
    capsys: pytest.CaptureFixture[str], repo: Path, postgres_server: Postgres
) -> None:
    live = git(repo, "rev-parse", "HEAD")
    body = (
        '    op.add_column("feedback", sa.Column("comment", sa.Text(), nullable=True))\n'
        '    op.execute("SELECT 1 / 0")'
    )
    head = commit(
        repo,
        {"app/migrations/versions/0005_half.py": revision("0005", "0004", body)},
        "A revision that fails after its first statement",
    )
    code, envelope = gate(
        capsys, "--repo", str(repo), "--base", live, "--head", head, "--check", "n-1",
        "--database-url", postgres_server.url(),
    )  # fmt: skip
    assert code == 1
    (sentence,) = problems(envelope, "n-1")
    assert sentence.startswith("migration: the new revisions fail on the live release's schema")
    assert "division by zero" in sentence
    # The same revision on a database: it stops, at the last revision that succeeded.
    url = postgres_server.create("halfway")
    env = {"APP_DATABASE_URL": url, "PYTHONPATH": str(repo)}
    run = subprocess.run(
        [sys.executable, "-m", "app.db", "upgrade", "--phase", "contract"],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **env},
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().startswith("error: the migration stopped (division by zero)")
    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        columns = connection.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name='feedback'")
        ).scalars()
        assert version == "0004" and "comment" not in set(columns)
    engine.dispose()
