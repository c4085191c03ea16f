"""Online quality signals computed for every answer, with no reference answer needed.

- groundedness: share of the answer's content terms that occur in the context documents (0..1);
- refused: the answer declines to answer;
- cited: the answer cites at least one context document as ``[n]``;
- score: the one number the canary analysis watches, 0..1: ``0.7 * groundedness + 0.3 * cited``
  for an answer, 0 for a refusal. Refusals score 0 because online we cannot tell a right refusal
  from a wrong one; stable and canary see the same traffic mix, so the comparison stays fair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.knowledge.retrieval import Document
from app.knowledge.thesaurus import vocabulary

_CITATION = re.compile(r"\[(\d{1,3})\]")
_REFUSAL = re.compile(
    r"\b(i (do not|don['\u2019]t|cannot|can['\u2019]t) (know|answer|find|help)|"
    r"not enough information|"
    r"no (relevant )?information|unable to answer|the context does not (say|mention|contain))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QualitySignals:
    """Signals of one answer."""

    groundedness: float
    refused: bool
    cited: bool
    score: float


def cited_numbers(answer: str, *, documents: int) -> list[int]:
    """Document numbers (1-based) the answer cites, in order, ignoring numbers out of range."""
    seen = dict.fromkeys(int(n) for n in _CITATION.findall(answer))
    return [n for n in seen if 1 <= n <= documents]


def is_refusal(answer: str) -> bool:
    """Whether the answer declines to answer."""
    return bool(_REFUSAL.search(answer))


def assess(answer: str, documents: Sequence[Document]) -> QualitySignals:
    """Signals of `answer` given the context documents it was asked to use."""
    if is_refusal(answer):
        return QualitySignals(groundedness=0.0, refused=True, cited=False, score=0.0)
    words = vocabulary()
    answer_terms = words.terms(_CITATION.sub(" ", answer))
    context = frozenset().union(*(words.term_set(f"{d.title} {d.text}") for d in documents))
    groundedness = (
        (sum(t in context for t in answer_terms) / len(answer_terms)) if answer_terms else 0.0
    )
    cited = bool(cited_numbers(answer, documents=len(documents)))
    return QualitySignals(
        groundedness=round(groundedness, 4),
        refused=False,
        cited=cited,
        score=round(0.7 * groundedness + 0.3 * cited, 4),
    )
