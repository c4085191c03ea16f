"""Unit tests of app/model_server/answerer.py, the deterministic extractive stand-in model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.answering import render_context
from app.knowledge.retrieval import Retriever, load_documents
from app.model_server.answerer import (
    PARAMETRIC_MEMORY,
    REFUSAL,
    Completion,
    Params,
    answer,
    parse_prompt,
)
from app.text import count_tokens
from contract.registry.loader import load_registry
from contract.registry.schema import PromptVersion
from tests.support.registry import KB_DIR, REGISTRY_DIR, REPO, golden_rows

CONTEXT = """\
[1] Refund Policy: Annual plans are refunded within 30 days of purchase. Monthly plans are \
never refunded. Refunds go to the original card within 10 business days.
[2] Support Hours: Support answers tickets from 9 to 17 on weekdays."""
CITE = "Answer only from the numbered context documents. Cite every document you use as [n]."
NO_CITE = "Answer only from the numbered context documents."
QUESTION = "When are annual plans refunded?"


def chat(system: str, question: str, context: str | None = CONTEXT) -> list[dict[str, str]]:
    """System and user messages laid out like the registry's templates."""
    user = (
        f"Question: {question}"
        if context is None
        else f"Context:\n{context}\n\nQuestion: {question}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def ask(
    messages: list[dict[str, str]], model: str = "extractive-base", **params: Any
) -> Completion:
    """Answer with default parameters, some replaced."""
    return answer(model, messages, Params(**params))


# --- reading the prompt ----------------------------------------------------------------------


def test_parse_prompt_reads_question_context_and_instructions() -> None:
    prompt = parse_prompt(chat(CITE, QUESTION))
    assert prompt.question == QUESTION
    assert [(s.source, s.text) for s in prompt.sentences][:2] == [
        (1, "Refund Policy: Annual plans are refunded within 30 days of purchase."),
        (1, "Monthly plans are never refunded."),
    ]
    assert {s.source for s in prompt.sentences} == {1, 2}
    assert prompt.cite
    assert prompt.grounded


def test_a_question_that_says_cite_does_not_turn_on_citations() -> None:
    prompt = parse_prompt(chat(NO_CITE, "Should I cite the refund policy?"))
    assert not prompt.cite


# --- answering -------------------------------------------------------------------------------


def test_same_input_gives_the_same_output() -> None:
    assert ask(chat(CITE, QUESTION)) == ask(chat(CITE, QUESTION))


def test_answers_from_the_best_context_sentence() -> None:
    result = ask(chat(CITE, QUESTION), top_k=1)
    assert result.text == "Refund Policy: Annual plans are refunded within 30 days of purchase. [1]"
    assert result.finish_reason == "stop"


def test_cites_only_when_the_prompt_asks() -> None:
    cited = ask(chat(CITE, QUESTION)).text
    uncited = ask(chat(NO_CITE, QUESTION)).text
    assert "[1]" in cited
    assert "[" not in uncited
    assert cited.replace(" [1]", "") == uncited


def test_cites_the_document_each_sentence_came_from() -> None:
    result = ask(chat(CITE, "When does support answer tickets?"), top_k=1)
    assert result.text.endswith("[2]")


def test_refuses_when_the_context_does_not_support_the_question() -> None:
    assert ask(chat(CITE, "What is the capital of France?")).text == REFUSAL


def test_refusal_threshold_is_min_score() -> None:
    # Half the question ("annual", "refunded") is supported, half ("bitcoin", "wallet") is not.
    question = "Are annual plans refunded to a bitcoin wallet?"
    assert ask(chat(CITE, question), min_score=0.3).text != REFUSAL
    assert ask(chat(CITE, question), min_score=0.9).text == REFUSAL


def test_without_context_or_mention_of_it_answers_from_parametric_memory() -> None:
    messages = [
        {"role": "system", "content": "You are a friendly assistant. Cite when useful."},
        {"role": "user", "content": "Question: How are refunds handled?"},
    ]
    result = ask(messages)
    assert result.text != REFUSAL
    assert result.text.startswith(PARAMETRIC_MEMORY[1])
    # Ungrounded: no document to cite, whatever the prompt says.
    assert "[" not in result.text


def test_without_context_but_told_to_use_it_refuses() -> None:
    messages = [
        {"role": "system", "content": "Answer only from the context documents."},
        {"role": "user", "content": "Question: How are refunds handled?"},
    ]
    assert ask(messages).text == REFUSAL


def test_empty_context_block_refuses() -> None:
    assert ask(chat(CITE, QUESTION, context="")).text == REFUSAL


def test_top_k_sets_the_number_of_sentences() -> None:
    counts = [ask(chat(CITE, QUESTION), top_k=k).text.count("[1]") for k in (1, 2, 3)]
    assert counts == [1, 2, 3]


def test_weak_sentences_are_left_out_even_within_top_k() -> None:
    # Support hours share nothing with a refund question: top_k=5 does not drag them in.
    assert "[2]" not in ask(chat(CITE, QUESTION), top_k=5).text


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    full = ask(chat(CITE, QUESTION), top_k=3)
    short = ask(chat(CITE, QUESTION), top_k=3, max_tokens=5)
    assert full.finish_reason == "stop"
    assert short.finish_reason == "length"
    assert full.text.startswith(short.text)
    assert len(short.text) < len(full.text)
    assert short.completion_tokens <= 5 < full.completion_tokens


def test_usage_counts_prompt_and_completion_tokens() -> None:
    messages = chat(CITE, QUESTION)
    result = ask(messages)
    assert result.prompt_tokens == sum(count_tokens(m["content"]) for m in messages)
    assert result.completion_tokens == count_tokens(result.text)


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="gpt-9"):
        ask(chat(CITE, QUESTION), model="gpt-9")


def test_temperature_with_a_fixed_seed_is_deterministic() -> None:
    first = ask(chat(CITE, QUESTION), temperature=1.0, seed=3)
    assert all(ask(chat(CITE, QUESTION), temperature=1.0, seed=3) == first for _ in range(3))


# --- quality over the golden dataset ---------------------------------------------------------


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    return Retriever(load_documents(KB_DIR))


@pytest.fixture(scope="module")
def golden() -> list[dict[str, Any]]:
    return golden_rows()


@pytest.fixture(scope="module")
def production() -> PromptVersion:
    return load_registry(REGISTRY_DIR).prompts["rag_answer"].production


def example_prompt(name: str) -> PromptVersion:
    """A candidate prompt version from examples/prompts/rag_answer/."""
    path = REPO / "examples" / "prompts" / "rag_answer" / f"{name}.yaml"
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return PromptVersion.model_validate({**data, "name": "rag_answer", "version": name})


def run_golden(
    rows: list[dict[str, Any]],
    retriever: Retriever,
    prompt: PromptVersion,
    *,
    model: str = "extractive-base",
    **params: Any,
) -> list[str]:
    """Answers to every golden question, rendered as the service renders them (k=3 context)."""
    settings = Params(top_k=2, min_score=0.35, max_tokens=160, seed=7)
    settings = Params(**{**settings.__dict__, **params})
    return [
        answer(
            model,
            prompt.render(
                question=row["question"],
                context=render_context(retriever.search(row["question"], k=3)),
            ),
            settings,
        ).text
        for row in rows
    ]


def fact_recall(rows: list[dict[str, Any]], answers: list[str]) -> float:
    """Share of the answerable rows' required facts found (case-insensitively) in the answers."""
    found = total = 0
    for row, text in zip(rows, answers, strict=True):
        if row["answerable"]:
            total += len(row["required_facts"])
            found += sum(fact.lower() in text.lower() for fact in row["required_facts"])
    return found / total


def test_golden_dataset_has_answerable_and_unanswerable_questions(
    golden: list[dict[str, Any]],
) -> None:
    assert sum(row["answerable"] for row in golden) >= 50
    assert sum(not row["answerable"] for row in golden) >= 5


def test_production_prompt_recalls_most_facts(
    golden: list[dict[str, Any]], retriever: Retriever, production: PromptVersion
) -> None:
    assert fact_recall(golden, run_golden(golden, retriever, production)) >= 0.5


def test_base_model_beats_mini_on_fact_recall(
    golden: list[dict[str, Any]], retriever: Retriever, production: PromptVersion
) -> None:
    base = fact_recall(golden, run_golden(golden, retriever, production))
    mini = fact_recall(golden, run_golden(golden, retriever, production, model="extractive-mini"))
    assert base > mini


def test_no_context_prompt_recalls_almost_no_facts(
    golden: list[dict[str, Any]], retriever: Retriever
) -> None:
    answers = run_golden(golden, retriever, example_prompt("v2-no-context"))
    assert fact_recall(golden, answers) < 0.05
    # Fluent answers from memory: nothing refused, nothing cited.
    assert REFUSAL not in answers
    assert not any("[" in text for text in answers)


def test_temperature_changes_some_golden_answers(
    golden: list[dict[str, Any]], retriever: Retriever, production: PromptVersion
) -> None:
    cold = run_golden(golden, retriever, production)
    warm = run_golden(golden, retriever, production, temperature=0.7)
    assert warm == run_golden(golden, retriever, production, temperature=0.7)
    changed = sum(a != b for a, b in zip(cold, warm, strict=True))
    assert 0 < changed < len(golden)
