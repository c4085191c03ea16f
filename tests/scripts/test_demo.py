"""The README's first command: the demo runs its three rollouts to the expected ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import demo
from scripts.toolkit.platform.state import StateStore
from scripts.toolkit.processes import free_port

pytestmark = pytest.mark.integration


@pytest.mark.timeout(420)  # the demo bounds itself at 5 minutes a rollout; it takes about 70 s
def test_the_demo_promotes_one_canary_and_rolls_back_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "demo"
    code = demo.main(
        ["--platform-dir", str(state_dir), "--port", str(free_port()), "--output", "json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    finals = [(r["title"], r["final"]) for r in out["data"]["rollouts"]]
    assert finals == [
        ("Rollout 1: good code canary", "promoted"),
        ("Rollout 2: erroring code canary", "rolled back"),
        ("Rollout 3: prompt that drops the context", "rolled back"),
    ]
    assert out["data"]["seconds"] < 300
    report = (tmp_path / "demo-report.md").read_text(encoding="utf-8")
    assert report.count("| metric | stable | canary |") == 3
    # Rolled back on the failing metric: its own limit (the exact fast test) or the margin.
    assert "error_rate: above the limit" in report or "error_rate: worse than stable" in report
    assert "quality_score: below the limit" in report or "quality_score: worse than" in report
    # Everything the demo started is stopped: `down` leaves no platform state behind.
    assert not StateStore(state_dir).exists()
