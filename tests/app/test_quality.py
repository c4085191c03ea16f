"""Unit tests of app/quality.py: groundedness, refusals, citations and the online score."""

from __future__ import annotations

import pytest

from app.knowledge.retrieval import Document
from app.model_server.answerer import REFUSAL
from app.quality import assess, cited_numbers, is_refusal

DOCUMENTS = [
    Document(
        "refund-policy",
        "Refund Policy",
        "Nimbus Labs gives a full refund for an annual Nimbus Notes subscription that is "
        "cancelled within 30 days of purchase. Monthly subscriptions are never refunded.",
    ),
    Document(
        "support-hours",
        "Support Hours",
        "Support answers tickets from 9:00 to 17:00 Central European Time on weekdays.",
    ),
]
COPIED = "Monthly subscriptions are never refunded."


def test_copied_sentence_is_fully_grounded() -> None:
    signals = assess(COPIED, DOCUMENTS)
    assert signals.groundedness == 1.0
    assert not signals.refused
    assert not signals.cited
    assert signals.score == 0.7


def test_copied_and_cited_sentence_scores_one() -> None:
    signals = assess(f"{COPIED} [1]", DOCUMENTS)
    assert (signals.groundedness, signals.cited, signals.score) == (1.0, True, 1.0)


def test_groundedness_reads_through_the_thesaurus() -> None:
    # "yearly" is in the thesaurus group of "annual", which the document uses.
    assert assess("Yearly subscriptions are refunded.", DOCUMENTS).groundedness == 1.0


def test_generic_unrelated_sentence_is_poorly_grounded() -> None:
    signals = assess("Enterprise customers often negotiate custom service levels.", DOCUMENTS)
    assert signals.groundedness < 0.3
    assert signals.score < 0.3


def test_partly_supported_answer_is_partly_grounded() -> None:
    signals = assess("Monthly subscriptions are refunded in bitcoin tokens.", DOCUMENTS)
    assert 0.3 < signals.groundedness < 1.0


def test_answer_without_content_terms_is_not_grounded() -> None:
    assert assess("It is.", DOCUMENTS).groundedness == 0.0


def test_citation_marks_do_not_count_as_terms() -> None:
    assert assess(f"{COPIED} [1] [2]", DOCUMENTS).groundedness == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        REFUSAL,
        "I do not know.",
        "Sorry, I cannot answer that from the documents.",
        "I can't find that in the documentation.",
        "There is not enough information to answer.",
        "The documents contain no relevant information about HIPAA.",
        "I am unable to answer this question.",
        "The context does not mention a student discount.",
    ],
)
def test_refusals_are_detected_and_score_zero(answer: str) -> None:
    assert is_refusal(answer)
    signals = assess(answer, DOCUMENTS)
    assert signals.refused
    assert (signals.score, signals.groundedness, signals.cited) == (0.0, 0.0, False)


def test_cited_refusal_still_scores_zero() -> None:
    assert assess(f"{REFUSAL} [1]", DOCUMENTS).score == 0.0


def test_refusal_with_typographic_apostrophe_is_detected() -> None:
    assert is_refusal("I don\u2019t know based on the provided context.")


@pytest.mark.parametrize(
    "answer",
    [
        COPIED,
        "Yes, you can know your balance at any time.",
        "Information about refunds is in the billing settings.",
    ],
)
def test_answers_are_not_mistaken_for_refusals(answer: str) -> None:
    assert not is_refusal(answer)


def test_cited_numbers_keep_first_seen_order_without_repeats() -> None:
    assert cited_numbers("A [2]. B [1]. C [2] [1] [3].", documents=3) == [2, 1, 3]


def test_cited_numbers_ignore_numbers_out_of_range() -> None:
    assert cited_numbers("A [0]. B [4]. C [2]. D [999].", documents=3) == [2]


def test_cited_numbers_ignore_other_brackets() -> None:
    assert cited_numbers("See [note] and [1a] and (1).", documents=3) == []


def test_out_of_range_citation_does_not_count_as_cited() -> None:
    signals = assess(f"{COPIED} [7]", DOCUMENTS)
    assert not signals.cited
    assert signals.score == 0.7


def test_no_documents_means_no_grounding_and_no_citation() -> None:
    signals = assess(f"{COPIED} [1]", [])
    assert (signals.groundedness, signals.cited, signals.score) == (0.0, False, 0.0)
