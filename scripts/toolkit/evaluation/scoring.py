"""Scores of one answer against its golden case (`SCORES` says what each one measures).

`None` marks a score that does not apply to a case (the facts and the groundedness of an
unanswerable one). A request that fails (HTTP 5xx, timeout, malformed body) counts as the worst
answer: 0 on every quality score and no latency or cost, so a candidate that fails more often
fails the gate.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scripts.toolkit.evaluation.dataset import GoldenCase

SCORES: dict[str, str] = {
    "correctness": "token F1 vs the reference answer; unanswerable: refused",
    "required_facts": "share of required facts in the answer (answerable cases)",
    "groundedness": "answer terms found in the retrieved context (answerable cases)",
    "refusal_correctness": "refuses exactly the unanswerable questions",
    "latency_seconds": "client-measured seconds per answer",
    "cost_per_answer": "estimated model cost per answer, US dollars",
}

_CITATION = re.compile(r"\[\d{1,3}\]")
# Words and numbers; a number keeps its decimal or thousands part (99.9, 10,000) whole.
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_ARTICLES = frozenset({"a", "an", "the"})


def answer_tokens(text: str) -> list[str]:
    """SQuAD-style normalisation: lower case, punctuation and articles dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _ARTICLES]


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (multiset overlap), as in SQuAD."""
    predicted, wanted = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def facts_found(answer: str, facts: Sequence[str]) -> float | None:
    """Share of `facts` that occur in `answer` (case and spacing ignored); None without facts."""
    if not facts:
        return None

    def squash(text: str) -> str:
        return " ".join(text.lower().split())

    text = squash(answer)
    return sum(squash(f) in text for f in facts) / len(facts)


def refusal_correctness(*, answerable: bool, refused: bool) -> float:
    """1 when the service refused exactly when it should have."""
    return float(refused != answerable)


@dataclass(frozen=True)
class Answer:
    """What one request returned (or why it failed)."""

    text: str = ""
    refused: bool = False
    groundedness: float = 0.0
    cost_usd: float | None = None
    latency_seconds: float | None = None
    prompt_version: str | None = None
    model: str | None = None  # name@version
    error: str | None = None


def score_case(case: GoldenCase, answer: Answer) -> dict[str, float | None]:
    """Every score of one answer; `None` where the score does not apply to the case."""
    if answer.error is not None:
        worst: dict[str, float | None] = dict.fromkeys(SCORES, 0.0)
        worst["latency_seconds"] = worst["cost_per_answer"] = None
        if not case.answerable:
            worst["required_facts"] = worst["groundedness"] = None
        elif not case.required_facts:
            worst["required_facts"] = None
        return worst
    text = _CITATION.sub(" ", answer.text)  # the answer without its `[n]` markers
    if case.answerable:
        correctness = token_f1(text, case.reference_answer)
    else:
        correctness = float(answer.refused)
    return {
        "correctness": correctness,
        "required_facts": facts_found(text, case.required_facts) if case.answerable else None,
        "groundedness": answer.groundedness if case.answerable else None,
        "refusal_correctness": refusal_correctness(
            answerable=case.answerable, refused=answer.refused
        ),
        "latency_seconds": answer.latency_seconds,
        "cost_per_answer": answer.cost_usd,
    }


@dataclass
class CaseResult:
    """One case: the scores of both arms."""

    case: GoldenCase
    candidate: dict[str, float | None]
    baseline: dict[str, float | None]
    candidate_error: str | None
    baseline_error: str | None
