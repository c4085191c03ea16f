"""A bounded queue of rows and one thread that writes them: the database is off the hot path.

A request only appends a row (`submit`, never blocking). The writer thread inserts rows in
batches, one transaction every `LINGER_SECONDS` at most, so a busy service pays one commit for
many rows; SQLAlchemy is imported by the thread on the first row, not at start-up. While the
database is unreachable the thread keeps the batch and retries with backoff, so an outage loses
nothing until the queue is full; rows beyond the queue's capacity are dropped and counted
(`app_db_writes_total{outcome="dropped"}`). A row the database refuses (a constraint, a column
the schema no longer has) is counted as failed, never retried forever. `status` is the
sentence `/readyz` shows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.metrics import ServiceMetrics
from contract.database import ANSWER_LOG, FEEDBACK

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

TABLES = (ANSWER_LOG, FEEDBACK)
BATCH_ROWS = 500
LINGER_SECONDS = 0.2  # rows gather this long before a batch is written
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0)
OK = "ok"


@dataclass(frozen=True)
class Row:
    """One row for one table."""

    table: str
    values: dict[str, Any]


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    return (str(inner).strip().splitlines() or [inner.__class__.__name__])[0]


class DatabaseWriter:
    """Writes submitted rows in a background thread; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        metrics: ServiceMetrics,
        capacity: int,
        prepare: Callable[[Engine], None] | None = None,
    ) -> None:
        self.url = url
        self._engine: Engine | None = None
        self.metrics = metrics
        self._queue: queue.Queue[Row] = queue.Queue(maxsize=capacity)
        self._prepare = prepare  # run once, on the first connection that works (migrations)
        self._prepared = prepare is None
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self.status = OK
        self.migration = OK
        m = metrics
        for table in TABLES:
            for outcome, reason in (("written", ""), ("failed", "rejected"),
                                    ("dropped", "queue_full")):  # fmt: skip
                m.db_writes.labels(*m.base, table, outcome, reason)  # exposed at 0 from start-up
        m.db_available.labels(*m.base).set(1)

    def start(self) -> DatabaseWriter:
        """Start the writer thread."""
        self._thread.start()
        return self

    def submit(self, table: str, values: dict[str, Any]) -> None:
        """Queue a row; when the queue is full the row is dropped and counted, never waited for."""
        m = self.metrics
        try:
            self._queue.put_nowait(Row(table, values))
        except queue.Full:
            m.db_writes.labels(*m.base, table, "dropped", "queue_full").inc()
            return
        m.db_queue.labels(*m.base).set(self._queue.qsize())

    def close(self, timeout: float) -> None:
        """Write what is queued within `timeout` seconds, then stop; what is left is counted as
        dropped (reason `shutdown`)."""
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._thread.join(timeout + 1.0)
        left = 0
        while True:
            try:
                row = self._queue.get_nowait()
            except queue.Empty:
                break
            left += 1
            self._count([row], "dropped", "shutdown")
        if left:
            log.warning("%d rows were not written before shutdown: %s", left, self.status)
        if self._engine is not None:
            self._engine.dispose()

    # The thread.

    @property
    def engine(self) -> Engine:
        """The engine, built (and SQLAlchemy imported) by the thread on its first batch."""
        if self._engine is None:
            from app.db.engine import build_engine  # noqa: PLC0415  # off the start-up path

            self._engine = build_engine(self.url)
        return self._engine

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take()
            if batch:
                self._write(batch)

    def _take(self) -> list[Row]:
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        self._stop.wait(LINGER_SECONDS)  # let rows gather: one commit for many (not at shutdown)
        while len(batch) < BATCH_ROWS:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.metrics.db_queue.labels(*self.metrics.base).set(self._queue.qsize())
        return batch

    def _write(self, batch: list[Row]) -> None:
        """Insert `batch`, retrying while the database is away; refused rows count as failed."""
        attempt = 0
        while True:
            try:
                self._ensure_prepared()
                self._insert(batch)
            except Exception as exc:  # any driver or migration error: decide by reachability
                if self._reachable():
                    # The database answers but refuses the batch: find the rows it refuses.
                    self._insert_one_by_one(batch)
                    self._set_status(OK)
                    return
                self._set_status(f"degraded: the database is unreachable ({_first_line(exc)})")
                if time.monotonic() >= self._deadline:
                    self._count(batch, "dropped", "shutdown")
                    return
                pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                time.sleep(min(pause, max(0.0, self._deadline - time.monotonic())))
                attempt += 1
                continue
            self._set_status(OK)
            self._count(batch, "written", "")
            return

    def _ensure_prepared(self) -> None:
        """Run `prepare` (the migrations) once the database answers. A failure while it answers
        is not retried: rows go to the schema as it is (an expand revision only adds, so the
        previous schema still takes them) and `migration` says what failed."""
        if self._prepared or self._prepare is None:
            return
        try:
            self._prepare(self.engine)
        except Exception as exc:
            if not self._reachable():
                raise
            self.migration = f"failed: {_first_line(exc)}"
            log.error("database migration failed; writing to the schema as it is: %s", exc)
        self._prepared = True

    def _insert(self, batch: list[Row]) -> None:
        from sqlalchemy import insert  # noqa: PLC0415  # imported by the thread, see engine

        from app.db.models import TABLES  # noqa: PLC0415

        by_table: dict[str, list[dict[str, Any]]] = {}
        for row in batch:
            by_table.setdefault(row.table, []).append(row.values)
        with self.engine.begin() as connection:
            for table, rows in by_table.items():
                connection.execute(insert(TABLES[table]), rows)

    def _insert_one_by_one(self, batch: list[Row]) -> None:
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError  # noqa: PLC0415

        for row in batch:
            try:
                self._insert([row])
            except SQLAlchemyError as exc:
                reason = "duplicate" if isinstance(exc, IntegrityError) else "rejected"
                log.error("a %s row was refused by the database: %s", row.table, _first_line(exc))
                self._count([row], "failed", reason)
            else:
                self._count([row], "written", "")

    def _reachable(self) -> bool:
        from sqlalchemy import text  # noqa: PLC0415
        from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def _count(self, rows: list[Row], outcome: str, reason: str) -> None:
        m = self.metrics
        for table, n in Counter(row.table for row in rows).items():
            m.db_writes.labels(*m.base, table, outcome, reason).inc(n)

    def _set_status(self, status: str) -> None:
        if status != self.status:
            (log.info if status == OK else log.warning)("database: %s", status)
        self.status = status
        self.metrics.db_available.labels(*self.metrics.base).set(1 if status == OK else 0)
