"""Load for the service: golden-set questions from many users, with or without think time.

`BENCH_WAIT=0` sends back-to-back requests (capacity); otherwise users wait about BENCH_WAIT
seconds between requests (uniform between half and one and a half times it), as people do.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import between, constant, task
from locust.contrib.fasthttp import FastHttpUser

QUESTIONS = [
    json.loads(line)["question"]
    for line in (Path(__file__).resolve().parents[1] / "eval" / "golden.jsonl").open()
]
_WAIT = float(os.environ.get("BENCH_WAIT", "0"))
_ids = itertools.count()


class AnswerUser(FastHttpUser):
    """A user asking golden-set questions in turn."""

    wait_time = between(_WAIT / 2, _WAIT * 1.5) if _WAIT > 0 else constant(0)

    def on_start(self) -> None:
        """Give each simulated user its own id (sticky assignment) and question order."""
        self.user_id = f"bench-user-{next(_ids)}"
        self.questions = itertools.cycle(
            QUESTIONS[hash(self.user_id) % len(QUESTIONS) :] + QUESTIONS
        )

    @task
    def ask(self) -> None:
        """One question."""
        self.client.post(
            "/v1/answer", json={"question": next(self.questions), "user_id": self.user_id}
        )
