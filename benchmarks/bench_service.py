"""Service benchmark: capacity against a bare FastAPI endpoint, and latency under 1/10/50 users.

Starts, on 127.0.0.1: the embedded model server, the service (pointed at it), and a bare FastAPI
endpoint (benchmarks/bare_app.py), then drives them with locust (FastHttpUser) headless:

- capacity: users with no think time against the bare endpoint and the service, in the same run;
  the ratio service/bare is the figure that survives a noisy machine;
- degradation: users waiting about 1 s between requests, as people do, at 1, 10 and 50 users;
- memory: resident set size of the service and of the model server after the runs.

Usage: python benchmarks/bench_service.py [--seconds 20] [--capacity-users 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess  # nosec B404
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.toolkit.load import locust_command  # noqa: E402
from scripts.toolkit.processes import ManagedProcess, free_port, python_module  # noqa: E402


def run_locust(
    host: str, *, users: int, seconds: int, wait: float, workdir: Path, path: str = "/v1/answer"
) -> dict[str, Any]:
    """One headless locust run; returns the aggregated row of its CSV statistics."""
    prefix = workdir / f"locust-{users}-{wait}-{free_port()}"
    command = locust_command(
        host, users=users, seconds=seconds, extra=("--csv", str(prefix), "--stop-timeout", "5")
    )
    env = {**os.environ, "LOAD_WAIT": str(wait), "LOAD_PATH": path}
    subprocess.run(
        command,
        env=env,
        check=False,
        capture_output=True,  # nosec B603
        timeout=seconds + 60,
    )
    with Path(f"{prefix}_stats.csv").open() as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
    }


def rss_mib(pid: int | None) -> float:
    """Resident memory of a process, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kib / 1024


def start_all(logs: Path) -> tuple[ManagedProcess, ManagedProcess, ManagedProcess]:
    """Model server, service and bare endpoint, each waited for."""
    model = python_module(
        "model-server",
        "app.model_server",
        port=(p1 := free_port()),
        args=["--port", str(p1)],
        log_dir=logs,
        cwd=REPO,
    )
    model.start().wait_http("/healthz")
    app = python_module(
        "service",
        "app",
        port=(p2 := free_port()),
        log_dir=logs,
        cwd=REPO,
        env={
            "APP_PORT": str(p2),
            "APP_PROVIDER": "openai-compatible",
            "APP_LOG_LEVEL": "warning",
            "APP_PROVIDER_BASE_URL": f"{model.url}/v1",
            "APP_VERSION": "bench",
        },
    )
    app.start().wait_http("/readyz")
    bare = python_module(
        "bare",
        "benchmarks.bare_app",
        port=(p3 := free_port()),
        args=["--port", str(p3), "--model-url", f"{model.url}/v1"],
        log_dir=logs,
        cwd=REPO,
    )
    bare.start().wait_http("/healthz")
    return model, app, bare


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of each locust run")
    parser.add_argument("--capacity-users", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        work = Path(tmp)
        model, app, bare = start_all(work)
        try:
            capacity = {
                name: run_locust(
                    proc.url,
                    users=args.capacity_users,
                    seconds=args.seconds,
                    wait=0,
                    workdir=work,
                    path=path,
                )
                for name, proc, path in (
                    ("bare endpoint", bare, "/v1/answer"),
                    ("bare endpoint + one model call", bare, "/v1/answer-via-model"),
                    ("service", app, "/v1/answer"),
                )
            }
            degradation = {
                users: run_locust(
                    app.url, users=users, seconds=max(args.seconds, 30), wait=1.0, workdir=work
                )
                for users in (1, 10, 50)
            }
            memory = {"service": rss_mib(app.pid), "model server": rss_mib(model.pid)}
        finally:
            for proc in (bare, app, model):
                proc.stop()
    ratio = capacity["service"]["rps"] / capacity["bare endpoint"]["rps"]
    floor_ratio = capacity["service"]["rps"] / capacity["bare endpoint + one model call"]["rps"]
    p95_ratio = degradation[10]["p95_ms"] / degradation[1]["p95_ms"]
    print(f"\nCapacity ({args.capacity_users} users, no think time, {args.seconds} s each)\n")
    print("| target | req/s | p50 ms | p95 ms | failures |")
    print("|---|---:|---:|---:|---:|")
    for name, r in capacity.items():
        print(
            f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['failures']} |"
        )
    print(
        f"\nservice / bare endpoint: {ratio:.1%}; "
        f"service / bare endpoint + one model call: {floor_ratio:.1%}\n"
    )
    print("Degradation (users wait 0.5-1.5 s between requests)\n")
    print("| users | req/s | p50 ms | p95 ms | p99 ms | failures |")
    print("|---:|---:|---:|---:|---:|---:|")
    for users, r in degradation.items():
        print(
            f"| {users} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} "
            f"| {r['p99_ms']:.0f} | {r['failures']} |"
        )
    print(f"\np95 at 10 users / p95 at 1 user: {p95_ratio:.2f}x\n")
    print("| process | resident memory MiB |")
    print("|---|---:|")
    for name, mib in memory.items():
        print(f"| {name} | {mib:.0f} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "capacity": capacity,
                    "ratio": ratio,
                    "degradation": degradation,
                    "p95_ratio": p95_ratio,
                    "memory_mib": memory,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
