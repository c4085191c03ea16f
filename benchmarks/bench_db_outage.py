"""Database outage under load: PostgreSQL killed for 10 s while clients answer and rate.

Starts on 127.0.0.1 a throwaway PostgreSQL (Debian's), the embedded model server and the
service writing to that PostgreSQL, then runs concurrent clients that each ask a question and
rate the answer, in a loop. The database is killed (SIGKILL, as a crash) after `--before`
seconds and started again `--outage` seconds later. Once the load stops and the service's
queue has drained, it counts what the clients were served and what the tables hold, and prints
one table: answers served, feedback accepted, rows written, rows dropped and why.

Usage: python benchmarks/bench_db_outage.py [--clients 8] [--before 5] [--outage 10]
       [--after 10] [--queue-rows 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contract import http  # noqa: E402
from contract.database import ANSWER_LOG, FEEDBACK  # noqa: E402
from contract.metrics import DB_QUEUE, DB_WRITES  # noqa: E402
from scripts.toolkit.metrics import parse_exposition  # noqa: E402
from scripts.toolkit.migrations.postgres import start_postgres  # noqa: E402
from scripts.toolkit.processes import free_port, python_module  # noqa: E402


class Load:
    """Clients asking and rating in a loop; counts by phase (before, outage, after)."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.phase = "before"
        self.stop = threading.Event()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latency: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def _count(self, what: str, latency: float | None = None) -> None:
        with self.lock:
            self.counts[self.phase, what] += 1
            if latency is not None:
                self.latency.setdefault(self.phase, []).append(latency)

    def _client(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                started = time.perf_counter()
                try:
                    answer = client.post(
                        http.ANSWER_PATH,
                        json={"question": "How do I roll back?", "user_id": f"u{number}-{n}"},
                    )
                except httpx.HTTPError:
                    self._count("answer_error")
                    continue
                if answer.status_code != 200:
                    self._count("answer_error")
                    continue
                self._count("answered", time.perf_counter() - started)
                rating = {**http.feedback_reference(answer.json()), "rating": "up"}
                rated = client.post(http.FEEDBACK_PATH, json=rating)
                self._count("rated" if rated.status_code == 202 else "rating_error")

    def run(self, **phases: float) -> None:
        threads = [threading.Thread(target=self._client, args=(n,)) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            for phase, seconds in phases.items():
                self.phase = phase
                time.sleep(seconds)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(60)


def writes(url: str) -> tuple[float, Counter[tuple[str, str, str]]]:
    samples = parse_exposition(httpx.get(f"{url}/metrics", timeout=10).text)
    queued = sum(v for n, _, v in samples if n == DB_QUEUE)
    by = Counter(
        {(s["table"], s["outcome"], s["reason"]): v for n, s, v in samples if n == DB_WRITES}
    )
    return queued, by


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--queue-rows", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-db-outage-"))
    server = start_postgres()
    model = python_module("model-server", "app.model_server", port=(p := free_port()),
                          args=["--port", str(p)], log_dir=logs, cwd=REPO)  # fmt: skip
    app = None
    try:
        database = server.create("bench")
        model.start().wait_http("/healthz")
        port = free_port()
        app = python_module("service", "app", port=port, log_dir=logs, cwd=REPO, env={
            "APP_PORT": str(port), "APP_ENV": "test", "APP_PROVIDER": "openai-compatible",
            "APP_PROVIDER_BASE_URL": f"{model.url}/v1", "APP_DATABASE_URL": database,
            "APP_DATABASE_QUEUE_ROWS": str(args.queue_rows),
        })  # fmt: skip
        app.start().wait_http("/readyz")
        load = Load(app.url, args.clients)
        killer = threading.Timer(args.before, server.kill)
        restarter = threading.Timer(args.before + args.outage, server.restart)
        readiness: list[tuple[float, int, str]] = []
        killer.start()
        restarter.start()
        watcher = threading.Thread(target=_watch_readyz, args=(app.url, load, readiness))
        watcher.start()
        load.run(before=args.before, outage=args.outage, after=args.after)
        watcher.join(10)
        restarter.join()
        deadline = time.monotonic() + 60
        queued, by = writes(app.url)
        while queued and time.monotonic() < deadline:
            time.sleep(0.5)
            queued, by = writes(app.url)
        rows = {t: _count_rows(database, t) for t in (ANSWER_LOG, FEEDBACK)}
    finally:
        if app is not None:
            app.stop()
        model.stop()
        server.stop()
    report = _report(load, by, rows, queued, readiness, args)
    print(report["table"])
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in report.items() if k != "table"}))
    return 0


def _watch_readyz(url: str, load: Load, seen: list[tuple[float, int, str]]) -> None:
    while not load.stop.is_set():
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
            seen.append((time.time(), response.status_code, response.json()["checks"]["database"]))
        except (httpx.HTTPError, KeyError, ValueError):
            seen.append((time.time(), 0, "unreachable"))
        time.sleep(0.5)


def _count_rows(url: str, table: str) -> int:
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    engine = create_engine(url)
    with engine.connect() as connection:
        n = int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)  # noqa: S608  # nosec B608  # a contract table name
    engine.dispose()
    return n


def _report(
    load: Load,
    by: Counter[tuple[str, str, str]],
    rows: dict[str, int],
    queued: float,
    readiness: list[tuple[float, int, str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    c = load.counts
    phases = ("before", "outage", "after")
    lines = [
        f"PostgreSQL killed for {args.outage:g} s under {args.clients} clients "
        f"({args.before:g} s before, {args.after:g} s after); queue {args.queue_rows} rows",
        "",
        "| phase | answers served | answers failed | ratings accepted | ratings failed "
        "| answer p50 ms | answer p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases:
        lat = sorted(load.latency.get(phase, [0.0]))
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000
        lines.append(
            f"| {phase} | {c[phase, 'answered']} | {c[phase, 'answer_error']} | "
            f"{c[phase, 'rated']} | {c[phase, 'rating_error']} | "
            f"{statistics.median(lat) * 1000:.1f} | {p95:.1f} |"
        )
    answered = sum(c[p, "answered"] + c[p, "answer_error"] for p in phases)
    rated = sum(c[p, "rated"] for p in phases)
    lines += [
        "",
        "| table | rows submitted | rows in the table | written | dropped (queue full) "
        "| dropped (shutdown) | failed | unaccounted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    figures: dict[str, Any] = {"counts": {f"{p}:{w}": n for (p, w), n in c.items()}}
    for table, submitted in ((ANSWER_LOG, answered), (FEEDBACK, rated)):
        written = sum(v for (t, o, _), v in by.items() if t == table and o == "written")
        full = by[table, "dropped", "queue_full"]
        shutdown = by[table, "dropped", "shutdown"]
        failed = sum(v for (t, o, _), v in by.items() if t == table and o == "failed")
        lost = submitted - rows[table] - full - shutdown - failed
        lines.append(
            f"| {table} | {submitted} | {rows[table]} | {written:.0f} | {full:.0f} | "
            f"{shutdown:.0f} | {failed:.0f} | {lost:.0f} |"
        )
        figures[table] = {"submitted": submitted, "in_table": rows[table], "written": written,
                          "dropped_queue_full": full, "dropped_shutdown": shutdown,
                          "failed": failed, "unaccounted": lost}  # fmt: skip
    degraded = [s for s in readiness if s[2] != "ok"]
    not_ready = [s for s in readiness if s[1] != 200]
    lines += [
        "",
        f"/readyz: {len(readiness)} probes, {len(degraded)} said the database was degraded, "
        f"{len(not_ready)} were not 200; rows still queued at the end: {queued:.0f}",
    ]
    figures["readyz"] = {"probes": len(readiness), "degraded": len(degraded),
                         "not_200": len(not_ready)}  # fmt: skip
    return {**figures, "table": "\n".join(lines)}


if __name__ == "__main__":
    sys.exit(main())
