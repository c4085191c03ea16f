"""A deterministic extractive answerer: an offline stand-in for a hosted chat model.

It reads the chat messages the service sends, finds the context documents (lines that start
with ``[n]``) and the question (the line after ``Question:``, or the rest of the message), ranks
the context sentences against the question, and answers with the best ones, citing them as
``[n]`` when the prompt asks for citations. With too little support it refuses. With no context
at all it answers from a small "parametric memory" of generic statements, as a hosted model
would answer from what it was trained on: fluent, and ungrounded.

Its parameters really move its quality: ``top_k`` (sentences used), ``min_score`` (refusal
threshold), ``temperature`` (noise added to the ranking, seeded by ``seed``), ``max_tokens``
(truncation). Two models differ in scoring: ``extractive-mini`` counts exact word overlap,
``extractive-base`` weighs stemmed terms by rarity.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.knowledge.thesaurus import vocabulary
from app.text import count_tokens, split_sentences, truncate_tokens, unique

REFUSAL = "I don't know based on the provided context."
MODELS = ("extractive-base", "extractive-mini")

_CONTEXT_LINE = re.compile(r"^\s*\[(\d{1,3})\]\s*(.+)$", re.MULTILINE)
_QUESTION_LINE = re.compile(r"^\s*(?:question|q)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_CITE = re.compile(r"\bcit(e|es|ing|ation|ations)\b", re.IGNORECASE)
_MENTIONS_CONTEXT = re.compile(r"\b(context|documents?|sources?)\b", re.IGNORECASE)

# What the model "knows" without context: plausible, generic, and unsupported by any document.
PARAMETRIC_MEMORY = (
    "Most software plans can usually be changed at any time from the account settings page.",
    "Refunds are generally handled case by case by the billing team of a vendor.",
    "Data is typically stored in several regions and kept for as long as the contract runs.",
    "Support teams usually answer tickets within a few business days.",
    "Enterprise customers often negotiate custom limits, prices and service levels.",
    "Many services offer an application programming interface with rate limits that vary by tier.",
    "Security features commonly include encryption, two-factor login and regular audits.",
    "Exports are normally available in common formats such as text files and spreadsheets.",
    "Mobile applications are typically available for the major phone platforms.",
    "Administrators can usually manage users, roles and permissions for the whole organisation.",
    "Deleted items often remain recoverable for a limited period before removal.",
    "Integrations with chat and productivity tools are a common feature of such products.",
)


@dataclass(frozen=True)
class Sentence:
    """A context sentence and the number of the document it came from (0: none)."""

    text: str
    source: int


@dataclass(frozen=True)
class Params:
    """Generation parameters the answerer honours."""

    top_k: int = 2
    min_score: float = 0.35
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    """The answer text with the usage figures an OpenAI-compatible API reports."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


@dataclass(frozen=True)
class Prompt:
    """What the answerer reads from the chat messages."""

    question: str
    sentences: list[Sentence]
    cite: bool
    grounded: bool  # told to answer from context (even if none came): refuse rather than guess


def parse_prompt(messages: Sequence[dict[str, str]]) -> Prompt:
    """The question, the context sentences, and what the instructions ask for."""
    full = "\n".join(m.get("content") or "" for m in messages)
    user = next(
        (m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), full
    )
    sentences = [
        Sentence(text=s, source=int(number))
        for number, body in _CONTEXT_LINE.findall(full)
        for s in split_sentences(body)
    ]
    asked = _QUESTION_LINE.findall(user)
    question = (asked[-1] if asked else _CONTEXT_LINE.sub("", user)).strip()
    instructions = _CONTEXT_LINE.sub("", full).replace(question, "")
    return Prompt(
        question=question,
        sentences=sentences,
        cite=bool(_CITE.search(instructions)),
        grounded=bool(sentences) or bool(_MENTIONS_CONTEXT.search(instructions)),
    )


def _scores(model: str, question: str, sentences: Sequence[Sentence]) -> list[float]:
    """Support of each sentence for the question, 0..1 (share of the question it covers)."""
    normalized = model != "extractive-mini"
    words = vocabulary()
    query = unique(words.terms(question, normalized=normalized))
    if not query:
        return [0.0] * len(sentences)
    bags = [words.term_set(s.text, normalized=normalized) for s in sentences]
    if model == "extractive-mini":
        return [len(bag.intersection(query)) / len(query) for bag in bags]
    n = len(bags)
    weight = {t: math.log(1 + (n + 1) / (1 + sum(t in bag for bag in bags))) for t in query}
    total = sum(weight.values())
    return [sum(weight[t] for t in query if t in bag) / total for bag in bags]


def _rng(params: Params, question: str) -> random.Random:
    material = f"{params.seed}:{question}".encode()
    # Sampling noise, not security: a seeded PRNG makes answers reproducible.
    return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))  # noqa: S311  # nosec B311


def answer(model: str, messages: Sequence[dict[str, str]], params: Params) -> Completion:
    """Answer the chat `messages` with `model`; deterministic for the same inputs."""
    if model not in MODELS:
        raise ValueError(f"The model `{model}` does not exist; available: {', '.join(MODELS)}.")
    prompt = parse_prompt(messages)
    question, cite, grounded = prompt.question, prompt.cite, prompt.grounded
    sentences = prompt.sentences if grounded else [Sentence(s, 0) for s in PARAMETRIC_MEMORY]
    if not sentences:
        return _completion(REFUSAL, messages, params)
    scores = _scores(model, question, sentences)
    if params.temperature > 0:
        rng = _rng(params, question)
        # Gumbel noise scaled by temperature: the higher it is, the likelier a weaker sentence wins.
        scores = [
            s + params.temperature * 0.25 * -math.log(-math.log(rng.random() or 1e-12))
            for s in scores
        ]
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    best = ranked[: max(1, params.top_k)]
    if grounded and scores[best[0]] < params.min_score:
        text = REFUSAL
    else:
        parts = []
        for i in best:
            if grounded and scores[i] < params.min_score / 2:
                break
            sentence = sentences[i]
            parts.append(
                f"{sentence.text} [{sentence.source}]" if cite and grounded else sentence.text
            )
        text = " ".join(parts)
    return _completion(text, messages, params)


def _completion(text: str, messages: Sequence[dict[str, str]], params: Params) -> Completion:
    text, cut = truncate_tokens(text, params.max_tokens)
    return Completion(
        text=text,
        prompt_tokens=sum(count_tokens(m.get("content") or "") for m in messages),
        completion_tokens=count_tokens(text),
        finish_reason="length" if cut else "stop",
    )
