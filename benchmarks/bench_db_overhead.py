"""What the database costs the service with its default (SQLite): start-up and answer latency
against the commit before it, measured in the same run.

Starts the embedded model server, then, alternating `--rounds` times: the service of the
commit before the database (a git worktree) and the service of this checkout (writing its
answer log and feedback to a scratch SQLite file). For each: seconds from spawn to the first
200 of /readyz, then `--answers` answers in a row, each rated. Prints medians and the ratio
after/before; the ratio is the figure that survives a noisy machine. Latency is shown over all
answers and over those after each instance's first `--warmup` seconds of answering: on its
first row the new service's writer thread imports SQLAlchemy and Alembic and creates the SQLite
schema, about a second of CPU beside the requests.

Usage: python benchmarks/bench_db_overhead.py [--rounds 3] [--answers 600] [--warmup 2]
       [--before REF]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess  # nosec B404
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contract import http  # noqa: E402
from scripts.toolkit.migrations.checkout import checkout_env  # noqa: E402
from scripts.toolkit.processes import ManagedProcess, free_port, python_module  # noqa: E402

FIRST_DATABASE_COMMIT = "keeps feedback and an answer log in a database"


def before_ref() -> str:
    found = subprocess.run(  # nosec B603
        ["git", "log", "--format=%H", "--fixed-strings", f"--grep={FIRST_DATABASE_COMMIT}", "-1"],  # noqa: S607
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return f"{found}~1"


def run_service(
    checkout: Path, model: ManagedProcess, logs: Path, settings: dict[str, str], answers: int
) -> tuple[float, list[tuple[float, float]]]:
    """Seconds to ready, and (seconds since the first answer, latency) of every answer."""
    port = free_port()
    env = checkout_env(checkout, {
        "APP_PORT": str(port), "APP_ENV": "test", "APP_PROVIDER": "openai-compatible",
        "APP_PROVIDER_BASE_URL": f"{model.url}/v1", **settings,
    })  # fmt: skip
    app = ManagedProcess(f"service-{port}", [sys.executable, "-m", "app"], port, env,
                         logs / f"service-{port}.log", cwd=checkout)  # fmt: skip
    started = time.perf_counter()
    app.start()
    try:
        app.wait_http(http.READY_PATH, timeout=60)
        startup = time.perf_counter() - started
        latencies = []
        first = time.perf_counter()
        with httpx.Client(base_url=app.url, timeout=30) as client:
            for n in range(answers):
                t = time.perf_counter()
                answer = client.post(http.ANSWER_PATH, json={"question": "How do I roll back?",
                                                             "user_id": f"u{n}"})  # fmt: skip
                latencies.append((t - first, time.perf_counter() - t))
                answer.raise_for_status()
                rating = {**http.feedback_reference(answer.json()), "rating": "up"}
                client.post(http.FEEDBACK_PATH, json=rating).raise_for_status()
        return startup, latencies
    finally:
        app.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--answers", type=int, default=600)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds")
    parser.add_argument("--before", help="the commit to compare with (default: the one before "
                        "the database)")  # fmt: skip
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-db-overhead-"))
    ref = args.before or before_ref()
    worktree = scratch / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), ref], cwd=REPO,  # noqa: S607  # nosec B603
                   check=True, capture_output=True)  # fmt: skip
    model = python_module("model-server", "app.model_server", port=(p := free_port()),
                          args=["--port", str(p)], log_dir=scratch, cwd=REPO)  # fmt: skip
    results: dict[str, tuple[list[float], list[float], list[float]]] = {
        "before": ([], [], []),
        "after": ([], [], []),
    }
    try:
        model.start().wait_http("/healthz")
        for n in range(args.rounds):
            for name, checkout, settings in (
                ("before", worktree, {}),
                ("after", REPO, {"APP_DATABASE_URL": f"sqlite:///{scratch / f'db-{n}.sqlite'}"}),
            ):
                startup, latencies = run_service(checkout, model, scratch, settings, args.answers)
                results[name][0].append(startup)
                results[name][1].extend(latency for _, latency in latencies)
                results[name][2].extend(lat for at, lat in latencies if at >= args.warmup)
    finally:
        model.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO,  # noqa: S607  # nosec B603
                       check=False, capture_output=True)  # fmt: skip

    def quantile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    print(f"before: {ref}; {args.rounds} rounds, {args.answers} answers (each rated) per round\n")
    print("| figure | before | after (SQLite) | after / before |\n|---|---:|---:|---:|")
    before, after = results["before"], results["after"]
    rows = [("start-up to ready, median s",
             statistics.median(before[0]), statistics.median(after[0]))]  # fmt: skip
    figures = (("p50", 1, 0.5), ("p95", 1, 0.95),
               ("p50 after warm-up", 2, 0.5), ("p95 after warm-up", 2, 0.95))  # fmt: skip
    for label, which, q in figures:
        rows.append((f"answer {label}, ms", quantile(before[which], q), quantile(after[which], q)))
    for label, old, new in rows:
        print(f"| {label} | {old:.3f} | {new:.3f} | {new / old:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
