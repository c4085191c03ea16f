"""The rollout chart: Mermaid blocks GitHub renders, and an SVG file, from a monitor's history."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from scripts.toolkit import chart
from scripts.toolkit.policy import DEFAULT_POLICY, load_policy

POLICY = load_policy(DEFAULT_POLICY)


def history(checks: int = 60) -> list[dict[str, object]]:
    """Checks as the monitor records them: a quality interval narrowing round a small loss, an
    error rate with no interval yet at the first check (too few answers)."""
    rows: list[dict[str, object]] = []
    for i in range(checks):
        half = 0.1 / (i + 1) ** 0.5
        metrics = {
            "error_rate": {"estimate": 0.001, "ci_low": None if i == 0 else -0.01,
                           "ci_high": None if i == 0 else 0.02, "margin": 0.02,
                           "canary": 0.01, "limit": 0.05},
            "quality_score": {"estimate": -0.01, "ci_low": -0.01 - half,
                              "ci_high": -0.01 + half, "margin": 0.05, "canary": 0.7,
                              "limit": 0.5},
        }  # fmt: skip
        rows.append({"at": 1000.0 + 5 * i, "step": 5 if i < 20 else 20, "metrics": metrics})
    return rows


def test_mermaid_has_one_xychart_per_panel_with_as_many_points_as_labels() -> None:
    lines = chart.mermaid(history(), POLICY)
    text = "\n".join(lines)
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    titles = [re.search(r'title "(.*)"', b).group(1) for b in blocks]  # type: ignore[union-attr]
    assert titles == [
        "canary weight, %",
        "error_rate: canary - stable",
        "error_rate: canary",
        "quality_score: canary - stable",
        "quality_score: canary",
    ]
    for block in blocks:
        body = block.splitlines()
        assert body[0].startswith("%%{init: ") and body[1] == "xychart-beta"
        labels = re.search(r"x-axis \[(.*)\]", block).group(1).split(", ")  # type: ignore[union-attr]
        assert len(labels) == len(set(labels)) <= chart.MAX_POINTS  # equal labels would merge
        for series in re.findall(r"line \[(.*)\]", block):
            assert len([float(v) for v in series.split(", ")]) == len(labels)
    # The error rate's interval starts at the second check; the quality margin lies below zero
    # (lower is worse) at -0.05.
    error = blocks[1]
    assert '"0"' not in error and '"5"' in error
    assert "line [-0.05, -0.05" in blocks[3]


def test_svg_is_well_formed_with_the_interval_shaded() -> None:
    root = ET.fromstring(chart.svg(history(), POLICY))  # noqa: S314  # our own output
    namespace = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{namespace}polygon")) == 2  # one band per difference panel
    assert len(root.findall(f"{namespace}rect")) == 5
    assert chart.svg([], POLICY).startswith("<svg") and chart.mermaid([], POLICY) == []
