"""Background load for end-to-end tests: threads asking golden questions as many users."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter

import httpx

from contract.files import REPO_ROOT

QUESTIONS = [json.loads(line)["question"] for line in (REPO_ROOT / "eval" / "golden.jsonl").open()]


class Load:
    """`workers` threads sending answers back to back (bounded by `max_seconds`)."""

    def __init__(self, url: str, *, workers: int = 6, max_seconds: float = 300.0) -> None:
        self.url = url
        self.workers = workers
        self.max_seconds = max_seconds
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._users = itertools.count()

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.max_seconds
        for worker in range(self.workers):
            thread = threading.Thread(target=self._run, args=(worker, deadline), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _run(self, worker: int, deadline: float) -> None:
        questions = itertools.cycle(QUESTIONS[worker * 7 :] + QUESTIONS[: worker * 7])
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                user = f"e2e-user-{next(self._users) % 5000}"
                try:
                    response = client.post(
                        "/v1/answer", json={"question": next(questions), "user_id": user}
                    )
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = 0
                    with self._lock:
                        self.errors.append(repr(exc))
                with self._lock:
                    self.statuses[status] += 1

    @property
    def total(self) -> int:
        """Requests sent so far."""
        with self._lock:
            return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        """Requests that did not get a 200."""
        with self._lock:
            return sum(n for status, n in self.statuses.items() if status != 200)
