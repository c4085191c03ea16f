"""Charts of a rollout from the monitor's history: Mermaid for Markdown, a plain SVG for a file.

Per check (`RolloutState.history`): the canary's weight, and per critical metric the difference
canary − stable with its always-valid interval against the margin (the side where the canary is
worse), and the canary's own mean against its limit. Checks without a value are left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from scripts.toolkit.policy import Policy

ESTIMATE, BOUND, THRESHOLD = "#1f5fa8", "#9cc3e8", "#c62828"
LEGEND = "dark blue: estimate; light blue: always-valid interval; red: margin or limit"
MAX_POINTS = 40  # Mermaid's x-axis labels stay readable


@dataclass(frozen=True)
class Panel:
    """One chart: a title, seconds since the first check, and lines of (colour, values)."""

    title: str
    seconds: list[float]
    lines: list[tuple[str, list[float]]]


def panels(history: Sequence[Mapping[str, Any]], policy: Policy) -> list[Panel]:
    """The rollout's panels (the policy says on which side of zero each margin lies)."""
    if not history:
        return []
    worse = {m.name: -1 if m.direction == "higher_is_better" else 1 for m in policy.metrics}
    seconds = [h["at"] - history[0]["at"] for h in history]
    result = [Panel("canary weight, %", seconds, [(ESTIMATE, [float(h["step"]) for h in history])])]
    for name in dict.fromkeys(n for h in history for n in h.get("metrics") or {}):
        rows = [(h.get("metrics") or {}).get(name) or {} for h in history]
        for title, keys, colours in (
            (f"{name}: canary - stable", ("estimate", "ci_low", "ci_high", "margin"), _INTERVAL),
            (f"{name}: canary", ("canary", "limit"), [ESTIMATE, THRESHOLD]),
        ):
            sign = {"margin": worse.get(name, 1)}
            points = [
                (t, [float(row[k]) * sign.get(k, 1) for k in keys])
                for t, row in zip(seconds, rows, strict=True)
                if all(row.get(k) is not None for k in keys)
            ]
            if points:
                lines = [(c, [v[i] for _, v in points]) for i, c in enumerate(colours)]
                result.append(Panel(title, [t for t, _ in points], lines))
    return result


_INTERVAL = [ESTIMATE, BOUND, BOUND, THRESHOLD]


def _thin(panel: Panel) -> Panel:
    n = len(panel.seconds)
    if n <= MAX_POINTS:
        return panel
    keep = sorted({round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    lines = [(c, [v[i] for i in keep]) for c, v in panel.lines]
    return Panel(panel.title, [panel.seconds[i] for i in keep], lines)


def _ticks(seconds: list[float]) -> list[str]:
    """Labels of the checks, as few digits as keep them apart (Mermaid merges equal ones)."""
    for digits in range(3):
        ticks = [f"{t:.{digits}f}" for t in seconds]
        if len(set(ticks)) == len(ticks):
            return ticks
    return [f"#{i + 1}" for i in range(len(seconds))]


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def mermaid(history: Sequence[Mapping[str, Any]], policy: Policy) -> list[str]:
    """Markdown lines: a legend and one ```mermaid `xychart-beta` block per panel."""
    blocks = [f"Rollout chart ({LEGEND}; x: seconds since the first check):"]
    for panel in map(_thin, panels(history, policy)):
        palette = ", ".join(c for c, _ in panel.lines)
        ticks = ", ".join(f'"{t}"' for t in _ticks(panel.seconds))
        blocks += [
            "",
            "```mermaid",
            "%%{init: "
            + json.dumps({"themeVariables": {"xyChart": {"plotColorPalette": palette}}})
            + "}%%",
            "xychart-beta",
            f'    title "{panel.title}"',
            f"    x-axis [{ticks}]",
            *(f"    line [{', '.join(map(_number, values))}]" for _, values in panel.lines),
            "```",
        ]
    return blocks if len(blocks) > 1 else []


def svg(history: Sequence[Mapping[str, Any]], policy: Policy) -> str:
    """A self-contained SVG: the panels stacked, each with its y range and time axis."""
    width, height, left, top = 720, 150, 70, 28
    shown = panels(history, policy)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{len(shown) * (height + top) + 50}" font-family="sans-serif" font-size="11">',
        f'<text x="8" y="16">{escape(LEGEND)}</text>',
    ]
    for index, panel in enumerate(shown):
        y0 = 30 + index * (height + top) + top
        values = [v for _, vs in panel.lines for v in vs] + [0.0]
        pad = (max(values) - min(values)) * 0.05 or 0.5
        low, high = min(values) - pad, max(values) + pad
        t_end = max(panel.seconds[-1], 1.0)

        def x(t: float) -> float:
            return left + (width - left - 10) * t / t_end  # noqa: B023  # used in this loop only

        def y(v: float) -> float:
            return y0 + height - height * (v - low) / (high - low)  # noqa: B023

        parts += [
            f'<text x="{left}" y="{y0 - 6}" font-weight="bold">{escape(panel.title)}</text>',
            f'<rect x="{left}" y="{y0}" width="{width - left - 10}" height="{height}" '
            'fill="none" stroke="#999"/>',
            f'<text x="{left - 4}" y="{y0 + 10}" text-anchor="end">{high:.3g}</text>',
            f'<text x="{left - 4}" y="{y0 + height}" text-anchor="end">{low:.3g}</text>',
            f'<text x="{width - 10}" y="{y0 + height + 13}" text-anchor="end">{t_end:.0f} s</text>',
            f'<line x1="{left}" x2="{width - 10}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#ddd"/>',
        ]
        drawn = {
            i: [f"{x(t):.1f},{y(v):.1f}" for t, v in zip(panel.seconds, line, strict=True)]
            for i, (_, line) in enumerate(panel.lines)
        }
        band = [drawn[i] for i, (colour, _) in enumerate(panel.lines) if colour == BOUND]
        if band:  # the interval, shaded between its bounds
            points = " ".join(band[0] + band[-1][::-1])
            parts.append(f'<polygon points="{points}" fill="{BOUND}" fill-opacity="0.6"/>')
        for i, (colour, _) in enumerate(panel.lines):
            if colour == BOUND:
                continue
            dots = " ".join(drawn[i])
            dash = ' stroke-dasharray="5,3"' if colour == THRESHOLD else ""
            parts.append(f'<polyline points="{dots}" fill="none" stroke="{colour}"{dash}/>')
    return "\n".join([*parts, "</svg>", ""])
