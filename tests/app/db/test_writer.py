"""The writer thread on a real SQLite file: refused rows, a failed migration, shutdown, and a
bad APP_DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, text

from app.core.config import Settings
from app.core.metrics import ServiceMetrics
from app.db.engine import build_engine
from app.db.migrate import upgrade
from app.db.rows import feedback_row
from app.db.writer import DatabaseWriter
from contract.database import FEEDBACK
from contract.metrics import DB_WRITES, Variant

VARIANT = Variant("stable", "dev", "rag_answer", "v1", "extractive-base", "v1")


def written(metrics: ServiceMetrics, outcome: str, reason: str) -> float:
    labels = {"track": "stable", "app_version": "dev", "table": FEEDBACK, "outcome": outcome,
              "reason": reason}  # fmt: skip
    return metrics.registry.get_sample_value(DB_WRITES, labels) or 0.0


def rows(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(text("SELECT request_id FROM feedback ORDER BY id")).scalars()
        result = list(found)
    engine.dispose()
    return result


def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    engine = build_engine(url)
    upgrade(engine, "expand")
    engine.dispose()
    return url


def metrics() -> ServiceMetrics:
    return ServiceMetrics(track="stable", app_version="dev", git_sha="x")


def test_a_row_the_database_refuses_is_counted_as_failed_and_the_others_written(
    tmp_path: Path,
) -> None:
    url, m = migrated(tmp_path), metrics()
    writer = DatabaseWriter(url, metrics=m, capacity=100).start()
    for request_id in ("a", "b", "a", "c"):  # an answer is rated once: "a" twice is refused
        writer.submit(FEEDBACK, feedback_row(request_id=request_id, variant=VARIANT, rating="up"))
    writer.close(5)
    assert rows(url) == ["a", "b", "c"]
    assert written(m, "written", "") == 3 and written(m, "failed", "duplicate") == 1
    assert writer.status == "ok"


def test_a_failed_migration_keeps_writing_to_the_schema_as_it_is(tmp_path: Path) -> None:
    url, m = migrated(tmp_path), metrics()

    def broken(_: object) -> None:
        raise RuntimeError("revision 0099 failed halfway")

    writer = DatabaseWriter(url, metrics=m, capacity=100, prepare=broken).start()
    writer.submit(FEEDBACK, feedback_row(request_id="a", variant=VARIANT, rating="down"))
    writer.close(5)
    assert rows(url) == ["a"]
    assert writer.migration == "failed: revision 0099 failed halfway"


def test_rows_that_cannot_be_written_before_shutdown_are_counted_as_dropped(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("in the way of the database folder")
    m = metrics()
    writer = DatabaseWriter(f"sqlite:///{tmp_path / 'file' / 'x.db'}", metrics=m, capacity=2)
    writer.start()
    for request_id in ("a", "b", "c", "d"):
        writer.submit(FEEDBACK, feedback_row(request_id=request_id, variant=VARIANT, rating="up"))
    writer.close(0.5)
    assert written(m, "dropped", "queue_full") == 2
    assert written(m, "dropped", "shutdown") == 2
    assert writer.status.startswith("degraded: the database is unreachable (")


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite://", "not a url"])
def test_a_database_url_of_another_kind_is_one_sentence(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=url)
    assert "APP_DATABASE_URL must be a sqlite:///path or postgresql://user@host/name URL." in str(
        caught.value
    )


def test_postgres_urls_use_psycopg_3() -> None:
    settings = Settings(database_url="postgres://svc@db:5432/ai")
    assert settings.database_url == "postgresql+psycopg://svc@db:5432/ai"


def copy_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """app/migrations with `extra` revision files, in place of the real folder."""
    import shutil  # noqa: PLC0415

    from app.db import migrate  # noqa: PLC0415

    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, body in extra.items():
        (folder / "versions" / f"{name}.py").write_text(body, encoding="utf-8")
    monkeypatch.setattr(migrate, "MIGRATIONS", folder)


def revision_file(revision: str, down: str, phase: str | None) -> str:
    marker = f'phase = "{phase}"' if phase else ""
    return (
        f'revision = "{revision}"\ndown_revision = "{down}"\n{marker}\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )


def test_two_heads_are_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_migrations(
        tmp_path, monkeypatch,
        a0005=revision_file("0005a", "0004", "expand"),
        b0005=revision_file("0005b", "0004", "expand"),
    )  # fmt: skip
    from app.db.migrate import MigrationError  # noqa: PLC0415

    engine = build_engine(f"sqlite:///{tmp_path / 'service.db'}")
    with pytest.raises(MigrationError) as caught:
        upgrade(engine, "expand")
    assert str(caught.value) == (
        "the migrations have 2 heads (0005a, 0005b); make one revision follow the other "
        "(or `alembic merge` them) before deploying."
    )
    with engine.connect() as connection:
        assert not connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='table'"
        ).all()
    engine.dispose()


def test_a_revision_without_a_phase_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_migrations(tmp_path, monkeypatch, unmarked=revision_file("0005", "0004", None))
    from app.db.migrate import MigrationError  # noqa: PLC0415

    engine = build_engine(f"sqlite:///{tmp_path / 'service.db'}")
    with pytest.raises(MigrationError, match=r"revision 0005 \(unmarked.py\) has no phase marker"):
        upgrade(engine, "contract")
    engine.dispose()
