"""Ratings through the local platform's router during a code canary: none lost, each counted for
the track that answered, whichever instance the rating reaches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contract import metrics as names
from contract.http import ANSWER_PATH, FEEDBACK_PATH, METRICS_PATH
from scripts import local_platform
from scripts.toolkit.platform.state import StateStore
from scripts.toolkit.processes import free_port
from scripts.toolkit.traffic.local import LocalBackend
from tests.support.metrics import parse_metrics

pytestmark = pytest.mark.integration

QUESTION = "How long are deleted notes kept in the trash?"
TRACKS = ("stable", "canary")


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A platform with a code canary at 50%; `down` always runs at the end."""
    state = tmp_path / "state"

    def cli(*args: str) -> int:
        return local_platform.main([*args[:1], "--platform-dir", str(state), *args[1:]])

    try:
        assert cli("up", "--port", str(free_port()), "--prometheus", "off") == 0
        assert cli("deploy", "--track", "canary") == 0
        LocalBackend(state).set_canary_weight(50)
        yield state
    finally:
        cli("down")


def feedback_by_track(state_dir: Path) -> Counter[str]:
    """`app_feedback_total` summed over every instance's /metrics, by its `track` label."""
    counts: Counter[str] = Counter()
    for track in TRACKS:
        url = StateStore(state_dir).read().processes[track].url
        page = parse_metrics(httpx.get(f"{url}{METRICS_PATH}", timeout=10).text)
        for sample in page.select(names.FEEDBACK):
            counts[sample.labels[names.TRACK]] += int(sample.value)
    return counts


def test_every_rating_counts_for_the_track_that_answered(state_dir: Path) -> None:
    router = StateStore(state_dir).read().router_url
    answered: Counter[str] = Counter()
    with httpx.Client(base_url=router, timeout=30) as http:
        tokens = []
        for n in range(100):
            response = http.post(ANSWER_PATH, json={"question": QUESTION, "user_id": f"u-{n}"})
            assert response.status_code == 200, response.text
            answered[response.json()["track"]] += 1
            tokens.append(response.json()["feedback_token"])
        assert set(answered) == set(TRACKS), "a 50% canary answers some of 100 users"
        # No user id and no routing header: the router sends each rating wherever it likes.
        statuses = [
            http.post(FEEDBACK_PATH, json={"feedback_token": token, "rating": "up"}).status_code
            for token in tokens
        ]
    assert Counter(statuses) == {202: 100}, "no rating is lost"
    assert feedback_by_track(state_dir) == answered
