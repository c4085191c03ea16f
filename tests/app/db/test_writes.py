"""The service writes its answer log and feedback off the hot path, and keeps answering when the
database is away: at start-up, mid-traffic, or when the queue is full."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, table, text

from contract import database as names
from contract.metrics import DB_WRITES
from scripts.toolkit.migrations.postgres import start_postgres
from tests.support.metrics import scrape
from tests.support.polling import poll_until
from tests.support.service import StartApp

pytestmark = pytest.mark.integration


def count(url: str, name: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table(name))).scalar())
    finally:
        engine.dispose()


def ask(client: httpx.Client, n: int) -> list[dict[str, object]]:
    answers = []
    for i in range(n):
        response = client.post(
            "/v1/answer", json={"question": "How do I roll back?", "user_id": f"u{i}"}
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def rate(client: httpx.Client, answers: list[dict[str, object]]) -> None:
    for answer in answers:
        response = client.post(
            "/v1/feedback", json={"feedback_token": answer["feedback_token"], "rating": "up"}
        )
        assert response.status_code == 202, response.text


def test_rows_are_written_with_the_variant_and_survive_a_restart(
    start_app: StartApp, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    app = start_app(database_url=url)
    with httpx.Client(base_url=app.url, timeout=10) as client:
        answers = ask(client, 3)
        rate(client, answers[:2])
        poll_until(lambda: count(url, names.FEEDBACK) == 2, timeout=10, message="2 ratings")
    app.stop()
    engine = create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM answer_log ORDER BY id")).mappings().first()
    engine.dispose()
    assert row is not None
    assert row["request_id"] == answers[0]["request_id"]
    assert row["prompt"] == "rag_answer" and row["track"] == "stable"
    assert row["outcome"] in ("answered", "refused") and row["latency_ms"] > 0
    assert row["question"] is None  # no question text unless APP_DATABASE_LOG_QUESTIONS
    assert row["unit_hash"] != "u0"  # the user id is not stored as is
    again = start_app(database_url=url, database_log_questions="true")
    with httpx.Client(base_url=again.url, timeout=10) as client:
        ask(client, 1)
    again.stop()
    assert count(url, names.ANSWER_LOG) == 4 and count(url, names.FEEDBACK) == 2
    engine = create_engine(url)
    with engine.connect() as connection:
        last = connection.execute(text("SELECT question FROM answer_log ORDER BY id DESC"))
        assert last.scalar() == "How do I roll back?"
    engine.dispose()


def test_a_database_away_at_start_up_and_mid_traffic_loses_no_row(start_app: StartApp) -> None:
    server = start_postgres()
    try:
        url = server.create(f"svc_{uuid.uuid4().hex[:8]}")
        server.kill()  # unreachable before the service starts
        app = start_app(database_url=url)
        with httpx.Client(base_url=app.url, timeout=10) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200  # an outage never takes the pod out of rotation
            answers = ask(client, 5)
            rate(client, answers)
            checks = poll_until(
                lambda: client.get("/readyz").json()["checks"]["database"].startswith("degraded"),
                timeout=15,
                message="readyz reports the database degraded",
            )
            assert checks
            server.restart()
            poll_until(lambda: count(url, names.FEEDBACK) == 5, timeout=20, message="5 ratings")
            server.kill()  # mid-traffic
            rate(client, ask(client, 5))
            server.restart()
            poll_until(lambda: count(url, names.FEEDBACK) == 10, timeout=20, message="10 ratings")
            assert count(url, names.ANSWER_LOG) == 10
            assert client.get("/readyz").json()["checks"]["database"] == "ok"
            metrics = scrape(client)
            assert metrics.value(DB_WRITES, outcome="written") == 20
            assert metrics.value(DB_WRITES, outcome="dropped") == 0
    finally:
        server.stop()


def test_a_full_queue_drops_rows_and_counts_them_while_answers_go_on(
    start_app: StartApp, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the database folder should be")
    app = start_app(database_url=f"sqlite:///{blocked / 'service.db'}", database_queue_rows="2")
    with httpx.Client(base_url=app.url, timeout=10) as client:
        ask(client, 6)
        metrics = scrape(client)
    # Two rows wait in the queue (retried until the database is back); the rest are dropped.
    dropped = metrics.value(DB_WRITES, outcome="dropped", reason="queue_full")
    assert dropped >= 3
