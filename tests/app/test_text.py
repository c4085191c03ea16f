"""Unit tests of app/text.py and the thesaurus: tokens, stems, synonyms, sentences, tokens."""

from __future__ import annotations

import pytest

from app.knowledge.thesaurus import vocabulary
from app.text import (
    Vocabulary,
    count_tokens,
    split_sentences,
    stem,
    tokens,
    truncate_tokens,
    unique,
)


def test_tokens_lower_case_words() -> None:
    assert tokens("The Team PLAN, renewed!") == ["the", "team", "plan", "renewed"]


@pytest.mark.parametrize(
    ("text", "token"),
    [("costs $8 per seat", "$8"), ("$8.50 a month", "$8.50"), ("$3,000 or more", "$3,000")],
)
def test_tokens_keep_prices_whole(text: str, token: str) -> None:
    assert token in tokens(text)


def test_tokens_keep_whole_percentages() -> None:
    assert tokens("a credit of 10% of the fee") == ["a", "credit", "of", "10%", "of", "the", "fee"]


@pytest.mark.parametrize("percentage", ["99.9%", "99.95%"])
def test_tokens_keep_decimal_percentages_whole(percentage: str) -> None:
    assert tokens(f"commits to {percentage} monthly uptime") == [
        "commits",
        "to",
        percentage,
        "monthly",
        "uptime",
    ]


def test_tokens_keep_decimal_numbers_whole() -> None:
    assert tokens("version 2.5 and 1,000 seats") == ["version", "2.5", "and", "1,000", "seats"]


def test_tokens_drop_sentence_final_period() -> None:
    # The period ends the sentence; it is not part of the number.
    assert tokens("within 30 days.") == ["within", "30", "days"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("plans", "plan"),
        ("billed", "bill"),
        ("billing", "bill"),
        ("policies", "policy"),
        ("boxes", "box"),
        ("class", "class"),  # a double s is not a plural
        ("is", "is"),  # too short to strip
        ("plan", "plan"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


@pytest.mark.parametrize(
    ("word", "canonical"),
    [
        ("tier", "plan"),
        ("tiers", "plan"),
        ("yearly", "annual"),
        ("annually", "annual"),
        ("seats", "user"),
        ("reimburse", "refund"),
        ("refunded", "refund"),
        ("iphone", "phone"),
        ("ask", "request"),  # users ask for what the documents call a request
    ],
)
def test_normalize_maps_thesaurus_words_to_their_group(word: str, canonical: str) -> None:
    assert vocabulary().normalize(word) == canonical


def test_normalize_stems_words_outside_the_thesaurus() -> None:
    assert vocabulary().normalize("workspaces") == "workspace"


def test_terms_drop_stop_words_and_normalize() -> None:
    assert vocabulary().terms("How much is the Team tier per seat yearly?") == [
        "team",
        "plan",
        "user",
        "annual",
    ]


def test_terms_without_normalization_keep_the_words() -> None:
    assert vocabulary().terms("yearly tiers", normalized=False) == ["yearly", "tiers"]


def test_a_vocabulary_without_synonyms_only_stems() -> None:
    # Generic text code knows no domain words: the thesaurus comes with the knowledge base.
    assert Vocabulary().terms("yearly tiers") == ["yearly", "tier"]


def test_split_sentences_on_end_punctuation() -> None:
    text = "The Team plan costs $8. Refunds take 10 days! Is SSO included? Yes."
    assert split_sentences(text) == [
        "The Team plan costs $8.",
        "Refunds take 10 days!",
        "Is SSO included?",
        "Yes.",
    ]


def test_split_sentences_keeps_decimals_and_lower_case_continuations() -> None:
    # No split inside `99.9` and none before a lower-case word (an abbreviation like `e.g.`).
    text = "Uptime is 99.9% for Business, e.g. on weekdays. $8 is the price."
    assert split_sentences(text) == [
        "Uptime is 99.9% for Business, e.g. on weekdays.",
        "$8 is the price.",
    ]


def test_split_sentences_of_blank_text_is_empty() -> None:
    assert split_sentences("  \n ") == []


PROSE = (
    "Approved refunds for Nimbus Notes are returned to the original payment method within 5 to "
    "10 business days. Seats removed in the middle of a billing period are credited to the "
    "account balance of the workspace instead of being refunded in cash."
)


def test_count_tokens_is_zero_for_empty_text() -> None:
    assert count_tokens("") == 0


def test_count_tokens_grows_with_the_text() -> None:
    assert 0 < count_tokens("Hello") < count_tokens("Hello, world!") < count_tokens(PROSE)


def test_count_tokens_is_in_the_range_of_a_real_tokenizer() -> None:
    # English prose runs at roughly 0.75 words per token (about 4 characters per token).
    words = len(PROSE.split())
    assert words * 0.8 <= count_tokens(PROSE) <= words * 2


def test_truncate_tokens_leaves_short_text_alone() -> None:
    assert truncate_tokens("Hello, world!", 100) == ("Hello, world!", False)
    assert truncate_tokens(PROSE, count_tokens(PROSE)) == (PROSE, False)


@pytest.mark.parametrize("limit", [5, 12, 30])
def test_truncate_tokens_cuts_a_prefix_within_the_limit(limit: int) -> None:
    cut, was_cut = truncate_tokens(PROSE, limit)
    assert was_cut
    assert PROSE.startswith(cut)
    assert limit * 0.6 <= count_tokens(cut) <= limit


@pytest.mark.parametrize("limit", [5, 12, 30])
def test_truncate_tokens_does_not_split_a_word(limit: int) -> None:
    cut, _ = truncate_tokens(PROSE, limit)
    assert cut
    assert not (cut[-1].isalnum() and PROSE[len(cut)].isalnum())


def test_truncate_tokens_to_zero_is_empty() -> None:
    assert truncate_tokens("Hello", 0) == ("", True)


def test_unique_keeps_first_seen_order() -> None:
    assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
