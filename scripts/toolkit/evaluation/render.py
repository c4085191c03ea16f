"""The evaluation as lines for stderr and as a Markdown decision record (`report.py`'s parts)."""

from __future__ import annotations

from scripts.toolkit.evaluation.gate import ScoreResult
from scripts.toolkit.evaluation.results import Evaluation
from scripts.toolkit.report import comparison_line, effect_text, markdown, number, table

QUALITY_SCORES = ("correctness", "required_facts", "groundedness", "refusal_correctness")


def _title(result: Evaluation) -> str:
    return (
        f"{result.prompt} {result.candidate.label()} vs {result.baseline.label()} "
        f"on {len(result.dataset.cases)} cases"
    )


def _threshold(score: ScoreResult) -> str:
    higher = score.direction == "higher_is_better"
    parts = []
    if score.margin is not None:
        parts.append(f"CI {'low ≥ -' if higher else 'high ≤ +'}{number(score.margin)}")
    if score.limit is not None:
        parts.append(f"mean {'≥' if higher else '≤'} {number(score.limit)}")
    return ", ".join(parts) or "-"


def render_text(result: Evaluation, written: str | None) -> str:
    lines = [f"quality gate {result.status.upper()}: {_title(result)}"]
    for s in result.scores:
        arms = [("baseline", s.baseline.estimate), ("candidate", s.candidate.estimate)]
        lines.append(comparison_line(s.name, arms, effect_text(s.difference), s.verdict))
    lines += [f"  - {f}" for f in result.failures]
    return "\n".join(lines + ([f"wrote {written}"] if written else []))


def _categories(result: Evaluation) -> list[str]:
    rows = []
    for name, scores in result.categories.items():
        by_name = {s.name: s for s in scores}
        cells = [
            f"{number(s.candidate.estimate)} ({number(s.baseline.estimate)})"
            if (s := by_name[q]).difference.n
            else "-"
            for q in QUALITY_SCORES
        ]
        rows.append([name, str(sum(r.case.category == name for r in result.cases)), *cells])
    return table(["category", "n", *QUALITY_SCORES], rows)


def _regressions(result: Evaluation) -> list[str]:
    worst = sorted(
        (r for r in result.cases if r.candidate["correctness"] is not None),
        key=lambda r: (r.candidate["correctness"] or 0) - (r.baseline["correctness"] or 0),
    )[:5]
    lines = [
        f"- `{r.case.id}` ({r.case.category}): correctness {number(r.baseline['correctness'])}"
        f" → {number(r.candidate['correctness'])}"
        + (f", candidate error: {r.candidate_error}" if r.candidate_error else "")
        for r in worst
        if (r.candidate["correctness"] or 0) < (r.baseline["correctness"] or 0)
    ]
    return ["Largest regressions:", *lines] if lines else []


def render_markdown(result: Evaluation, written: str | None) -> str:
    """The decision record for $GITHUB_STEP_SUMMARY."""
    confidence = f"{100 * (1 - result.alpha):g}%"
    cand, base, dataset = result.candidate, result.baseline, result.dataset
    facts = [
        f"dataset: `{dataset.path}` ({len(dataset.cases)} of {dataset.cases_in_file} cases, "
        f"sha256 `{dataset.sha256[:12]}`)",
        f"candidate: {cand.label()} at {cand.url} ({cand.errors} failed requests)",
        f"baseline: {base.label()} at {base.url} ({base.errors} failed requests)",
        f"intervals: Student-t, {confidence} two-sided, paired per question for the "
        "difference; a score passes when the bound on the worse side is within the margin",
    ]
    header = ["score", "baseline", "candidate", f"difference ({confidence} CI)", "threshold"]
    rows = [
        [
            s.name,
            number(s.baseline.estimate),
            number(s.candidate.estimate),
            f"{effect_text(s.difference)} (n={s.difference.n:.0f})",
            _threshold(s),
            f"**{s.verdict}**: {s.reason}",
        ]
        for s in result.scores
    ]
    return markdown(
        f"Quality evaluation: **{result.status.upper()}**, {_title(result)}",
        facts,
        table([*header, "verdict"], rows),
        ["By category (candidate, baseline in brackets):", "", *_categories(result)],
        _regressions(result),
        [f"Recorded in `{written}`."] if written else [],
    )
