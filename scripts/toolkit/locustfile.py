"""Load on the service with locust: golden-set questions from many users, and their ratings.

Used by the demo (steady load while rollouts run) and by the benchmarks. Settings:
- LOAD_WAIT: think time in seconds between a user's requests, uniform in [0.5, 1.5] x LOAD_WAIT;
- LOAD_RATE: requests per second per user instead (constant throughput), when set;
- LOAD_FEEDBACK: share of answers the user rates (0 by default); a user rates `down` an answer
  that refused or scored below 0.5 on the service's quality score, most of the time, and `up`
  otherwise, like people who dislike unhelpful answers;
- LOAD_SEED: seed for the users' choices (reproducible runs);
- LOAD_PATH: the answer endpoint (default /v1/answer; the benchmarks' baselines use others).
With neither LOAD_WAIT nor LOAD_RATE, users send back-to-back requests (capacity tests).
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

from locust import between, constant, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

from contract.files import REPO_ROOT
from contract.http import FEEDBACK_PATH, feedback_reference
from scripts.toolkit.evaluation.dataset import DEFAULT_DATASET, load_dataset

QUESTIONS = [case.question for case in load_dataset(REPO_ROOT / DEFAULT_DATASET).cases]
_WAIT = float(os.environ.get("LOAD_WAIT", "0") or 0)
_RATE = float(os.environ.get("LOAD_RATE", "0") or 0)
_FEEDBACK = float(os.environ.get("LOAD_FEEDBACK", "0") or 0)
_SEED = int(os.environ.get("LOAD_SEED", "7"))
_PATH = os.environ.get("LOAD_PATH", "/v1/answer")
_ids = itertools.count()


def _wait_time() -> Any:  # locust's wait-time callables are untyped
    if _RATE > 0:
        return constant_throughput(_RATE)
    if _WAIT > 0:
        return between(_WAIT / 2, _WAIT * 1.5)
    return constant(0)


class AnswerUser(FastHttpUser):
    """A user asking golden-set questions in turn, sometimes rating the answer."""

    wait_time = _wait_time()

    def on_start(self) -> None:
        """Each simulated user has its own id (sticky assignment) and order of questions."""
        number = next(_ids)
        self.user_id = f"load-user-{number}"
        self.random = random.Random(_SEED * 100_003 + number)  # noqa: S311  # nosec B311  # load, not security
        self.questions = itertools.cycle(self.random.sample(QUESTIONS, len(QUESTIONS)))

    @task
    def ask(self) -> None:
        """One question, and perhaps a rating of its answer."""
        with self.client.post(
            _PATH,
            json={"question": next(self.questions), "user_id": self.user_id},
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            body = response.json()
        if _FEEDBACK and self.random.random() < _FEEDBACK:
            quality = body.get("quality", {})
            unhelpful = quality.get("refused") or quality.get("score", 1.0) < 0.5
            rating = "down" if self.random.random() < (0.7 if unhelpful else 0.1) else "up"
            self.client.post(FEEDBACK_PATH, json={**feedback_reference(body), "rating": rating})
