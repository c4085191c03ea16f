"""The evaluation as text for stderr and as a Markdown decision record for the step summary."""

from __future__ import annotations

from scripts.toolkit.evaluation.gate import ScoreResult
from scripts.toolkit.evaluation.intervals import Interval
from scripts.toolkit.evaluation.results import Evaluation
from scripts.toolkit.report import number

QUALITY_SCORES = ("correctness", "required_facts", "groundedness", "refusal_correctness")


def _title(result: Evaluation) -> str:
    return (
        f"{result.prompt} {result.candidate.label()} vs {result.baseline.label()} "
        f"on {len(result.dataset.cases)} cases"
    )


def _signed(value: float | None) -> str:
    text = number(value)
    return f"+{text}" if value is not None and text != "-" and value > 0 else text


def _difference(d: Interval) -> str:
    return f"{_signed(d.mean)} [{number(d.low)}, {number(d.high)}]"


def _threshold(score: ScoreResult) -> str:
    parts = []
    if score.margin is not None:
        sign = "≥ -" if score.direction == "higher_is_better" else "≤ +"
        bound = "low" if score.direction == "higher_is_better" else "high"
        parts.append(f"CI {bound} {sign}{number(score.margin)}")
    if score.floor is not None:
        parts.append(f"mean ≥ {number(score.floor)}")
    if score.ceiling is not None:
        parts.append(f"mean ≤ {number(score.ceiling)}")
    return ", ".join(parts) or "-"


def render_text(result: Evaluation, written: str | None) -> str:
    """Human summary for stderr."""
    lines = [f"quality gate {result.status.upper()}: {_title(result)}"]
    for s in result.scores:
        lines.append(
            f"  {s.name:<20} baseline {number(s.baseline.mean):>9}  "
            f"candidate {number(s.candidate.mean):>9}  "
            f"diff {_difference(s.difference)}  {s.verdict}"
        )
    lines += [f"  - {f}" for f in result.failures]
    if written:
        lines.append(f"wrote {written}")
    return "\n".join(lines)


def _categories(result: Evaluation) -> list[str]:
    lines = ["| category | n | " + " | ".join(QUALITY_SCORES) + " |"]
    lines.append("|---|---|" + "---|" * len(QUALITY_SCORES))
    for name, scores in result.categories.items():
        by_name = {s.name: s for s in scores}
        cells = [
            f"{number(by_name[q].candidate.mean)} ({number(by_name[q].baseline.mean)})"
            if by_name[q].difference.n
            else "-"
            for q in QUALITY_SCORES
        ]
        n = sum(r.case.category == name for r in result.cases)
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def _regressions(result: Evaluation) -> list[str]:
    worst = sorted(
        (r for r in result.cases if r.candidate["correctness"] is not None),
        key=lambda r: (r.candidate["correctness"] or 0) - (r.baseline["correctness"] or 0),
    )[:5]
    return [
        f"- `{r.case.id}` ({r.case.category}): correctness {number(r.baseline['correctness'])}"
        f" → {number(r.candidate['correctness'])}"
        + (f", candidate error: {r.candidate_error}" if r.candidate_error else "")
        for r in worst
        if (r.candidate["correctness"] or 0) < (r.baseline["correctness"] or 0)
    ]


def render_markdown(result: Evaluation, written: str | None) -> str:
    """The decision record for $GITHUB_STEP_SUMMARY."""
    confidence = f"{100 * (1 - result.alpha):g}%"
    cand, base = result.candidate, result.baseline
    lines = [
        f"### Quality evaluation: **{result.status.upper()}**, {_title(result)}",
        "",
        f"- dataset: `{result.dataset.path}` ({len(result.dataset.cases)} of "
        f"{result.dataset.cases_in_file} cases, sha256 `{result.dataset.sha256[:12]}`)",
        f"- candidate: {cand.label()} at {cand.url} ({cand.errors} failed requests)",
        f"- baseline: {base.label()} at {base.url} ({base.errors} failed requests)",
        f"- intervals: Student-t, {confidence} two-sided, paired per question for the "
        "difference; a score passes when the bound on the worse side is within the margin",
        "",
        f"| score | baseline | candidate | difference ({confidence} CI) | threshold | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for s in result.scores:
        lines.append(
            f"| {s.name} | {number(s.baseline.mean)} | {number(s.candidate.mean)} "
            f"| {_difference(s.difference)} (n={s.difference.n}) "
            f"| {_threshold(s)} | **{s.verdict}**: {s.reason} |"
        )
    lines += ["", "By category (candidate, baseline in brackets):", "", *_categories(result)]
    regressions = _regressions(result)
    if regressions:
        lines += ["", "Largest regressions:", *regressions]
    if written:
        lines += ["", f"Recorded in `{written}`."]
    return "\n".join(lines)
