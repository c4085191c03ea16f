"""Rollback benchmark on the local platform: how fast a rollback takes effect, and whether any
request fails while a rollout promotes or rolls back.

Starts a local platform (`scripts/toolkit/platform`, no Prometheus) in a scratch folder on
127.0.0.1, then measures, in one run:

- code rollback: `LocalBackend.rollback_canary()` with the canary at 50%, until every new
  request is served by stable (read from `X-Routed-Track` of requests sent continuously by
  many user ids); also how long the call takes to return (it then stops the canary);
- prompt rollback: `registry_ops.rollback()` of a prompt canary at 50%, until every answer's
  `prompt.version` is the production one; bounded below by the service's registry polling
  (APP_REGISTRY_RELOAD_SECONDS, 0.5 s on the platform);
- failed requests while locust (FastHttpUser, headless, 20 users) sends answers through the
  router and the script steps a canary 5 -> 20 -> 50 %, promotes it, deploys another and rolls
  it back.

Usage: python benchmarks/bench_rollback.py [--repetitions 20] [--users 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.toolkit import registry_ops  # noqa: E402
from scripts.toolkit.load import locust_command  # noqa: E402
from scripts.toolkit.platform import lifecycle, tracks  # noqa: E402
from scripts.toolkit.platform.state import StateStore  # noqa: E402
from scripts.toolkit.processes import free_port  # noqa: E402
from scripts.toolkit.traffic.local import LocalBackend  # noqa: E402

PROMPT = "rag_answer"
CANDIDATE = REPO / "examples" / "prompts" / PROMPT / "v2.yaml"
QUESTION = "How long are deleted notes kept in the trash?"


@dataclass
class Poller:
    """Sends requests continuously from a background thread; records (sent at, label)."""

    url: str
    label: Callable[[aiohttp.ClientResponse, bytes], str]
    body: Callable[[str], dict[str, Any] | None]
    concurrency: int = 8
    users: list[str] = field(default_factory=lambda: [f"poll-user-{n}" for n in range(1000)])
    samples: list[tuple[float, str]] = field(default_factory=list)
    errors: int = 0

    @contextmanager
    def running(self) -> Iterator[Poller]:
        stop = threading.Event()
        thread = threading.Thread(target=lambda: asyncio.run(self._run(stop)), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(30)

    async def _run(self, stop: threading.Event) -> None:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self._worker(session, stop) for _ in range(self.concurrency)))

    async def _worker(self, session: aiohttp.ClientSession, stop: threading.Event) -> None:
        rng = random.Random()  # noqa: S311  # load pattern, not security
        while not stop.is_set():
            user = rng.choice(self.users)
            body = self.body(user)
            sent = time.monotonic()
            method = "POST" if body is not None else "GET"
            try:
                async with session.request(
                    method, self.url, json=body, headers={"X-User-ID": user}
                ) as response:
                    payload = await response.read()
                    if response.status != 200:
                        self.errors += 1
                    self.samples.append((sent, self.label(response, payload)))
            except aiohttp.ClientError:
                self.errors += 1

    def settled_after(self, start: float, bad: str) -> float | None:
        """Seconds from `start` until the last request labelled `bad` was sent (0 when none
        after `start`); None if no good request followed it (not settled)."""
        after = sorted(s for s in self.samples if s[0] >= start)
        last_bad = max((t for t, label in after if label == bad), default=None)
        if last_bad is None:
            return 0.0
        if not any(t > last_bad and label != bad for t, label in after):
            return None
        return last_bad - start


def track_of(response: aiohttp.ClientResponse, _: bytes) -> str:
    return response.headers.get("X-Routed-Track", "?")


def prompt_version_of(_: aiohttp.ClientResponse, payload: bytes) -> str:
    try:
        return str(json.loads(payload)["prompt"]["version"])
    except (ValueError, KeyError, TypeError):
        return "error"


def summarize(name: str, values: list[float], target: str) -> dict[str, Any]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "measurement": name,
        "n": len(values),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "target": target,
    }


def wait_until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def bench_code_rollback(state_dir: Path, url: str, repetitions: int) -> list[dict[str, Any]]:
    backend = LocalBackend(state_dir)
    settle: list[float] = []
    returned: list[float] = []
    for _ in range(repetitions):
        tracks.deploy(state_dir, track="canary")
        backend.set_canary_weight(50)
        poller = Poller(f"{url}/healthz", label=track_of, body=lambda _: None)
        with poller.running():
            wait_until(
                lambda p=poller: sum(label == "canary" for _, label in p.samples) > 20,
                10,
                "canary traffic",
            )
            start = time.monotonic()
            backend.rollback_canary()
            returned.append(time.monotonic() - start)
            time.sleep(0.3)
        value = poller.settled_after(start, "canary")
        if value is None or poller.errors:
            raise RuntimeError(f"rollback did not settle cleanly ({poller.errors} errors)")
        settle.append(value)
    return [
        summarize("code rollback: every new request on stable", settle, "< 1 s"),
        summarize("code rollback: rollback_canary() returns (canary stopped)", returned, "-"),
    ]


def bench_prompt_rollback(state_dir: Path, url: str, repetitions: int) -> list[dict[str, Any]]:
    registry = Path(StateStore(state_dir).read().registry_dir)
    target = registry / "prompts" / PROMPT / CANDIDATE.name
    shutil.copyfile(CANDIDATE, target)
    candidate = CANDIDATE.stem
    production = registry_ops.rollout_state(registry, PROMPT).production
    settle: list[float] = []
    for _ in range(repetitions):
        registry_ops.start_canary(registry, PROMPT, candidate, 50)
        poller = Poller(
            f"{url}/v1/answer",
            label=prompt_version_of,
            body=lambda user: {"question": QUESTION, "user_id": user},
            users=[f"prompt-user-{n}" for n in range(200)],
        )
        with poller.running():
            wait_until(
                lambda p=poller: sum(label == candidate for _, label in p.samples) > 10,
                10,
                "prompt canary traffic",
            )
            start = time.monotonic()
            registry_ops.rollback(registry, PROMPT)
            wait_until(
                lambda p=poller, s=start: any(
                    t > s + 0.6 and label == production for t, label in p.samples
                ),
                10,
                "requests after the reload",
            )
        value = poller.settled_after(start, candidate)
        if value is None or poller.errors:
            raise RuntimeError(f"prompt rollback did not settle ({poller.errors} errors)")
        settle.append(value)
    return [
        summarize(
            "prompt rollback: every answer on the production prompt (reload every 0.5 s)",
            settle,
            "< reload interval + 1 request",
        )
    ]


def bench_failures_under_load(
    state_dir: Path, url: str, *, users: int, wait: float, workdir: Path
) -> list[dict[str, Any]]:
    """Locust users through the router while the rollout steps run; failed requests per run."""
    backend = LocalBackend(state_dir)
    report = workdir / "locust.json"
    command = locust_command(url, users=users, seconds=600, extra=(
        "--json-file", str(report.with_suffix("")), "--stop-timeout", "10",
    ))  # fmt: skip
    env = {**os.environ, "LOAD_WAIT": str(wait)}
    locust = subprocess.Popen(  # nosec B603  # fixed argv
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "locust.log").open("wb"),
        start_new_session=True,
    )
    steps: list[tuple[str, float]] = []

    def step(name: str, action: Callable[[], object], pause: float = 2.0) -> None:
        started = time.monotonic()
        action()
        steps.append((name, time.monotonic() - started))
        time.sleep(pause)

    try:
        time.sleep(5)  # users ramped up and served by stable alone
        # A version of its own, so that promoting really replaces the stable instance.
        step("deploy canary", lambda: deploy_candidate(state_dir, "candidate-1"))
        for percent in (5, 20, 50):
            step(f"canary {percent}%", lambda p=percent: backend.set_canary_weight(p))
        step("promote_canary", backend.promote_canary)
        step("deploy canary", lambda: deploy_candidate(state_dir, "candidate-2"))
        step("canary 20%", lambda: backend.set_canary_weight(20))
        step("rollback_canary", backend.rollback_canary, pause=3.0)
    finally:
        locust.send_signal(signal.SIGTERM)  # our own child: locust writes its report and quits
        try:
            locust.wait(60)
        except subprocess.TimeoutExpired:
            locust.kill()
            locust.wait(10)
    entries = json.loads(report.read_text())
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    return [
        {
            "users": users,
            "think_time_s": wait,
            "requests": requests,
            "failed": failures,
            "steps": ", ".join(f"{name} ({took:.1f} s)" for name, took in steps),
        }
    ]


def deploy_candidate(state_dir: Path, version: str) -> None:
    tracks.deploy(state_dir, track="canary", env={"APP_VERSION": version})


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--users", type=int, default=20, help="locust users")
    parser.add_argument("--wait", type=float, default=0.5, help="locust think time, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    state_dir = workdir / "platform"
    started = time.monotonic()
    lifecycle.up(state_dir, port=free_port(), prometheus_mode="off")
    try:
        url = StateStore(state_dir).read().router_url
        httpx.get(f"{url}/healthz", timeout=10).raise_for_status()
        latency = bench_code_rollback(state_dir, url, args.repetitions)
        latency += bench_prompt_rollback(state_dir, url, args.repetitions)
        load = bench_failures_under_load(
            state_dir, url, users=args.users, wait=args.wait, workdir=workdir
        )
    finally:
        lifecycle.down(state_dir)
    print("## Rollback latency (local platform)\n")
    print(table(latency))
    print("\n## Failed requests during promote and rollback (locust, through the router)\n")
    print(table(load))
    print(f"\n_{os.cpu_count()} CPUs, run took {time.monotonic() - started:.0f} s._")
    if args.json:
        args.json.write_text(json.dumps({"latency": latency, "load": load}, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
