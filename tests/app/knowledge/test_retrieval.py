"""Unit tests of app/knowledge/retrieval.py: loading the knowledge base and BM25 search."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.knowledge.retrieval import Document, Retriever, load_documents
from tests.support.registry import KB_DIR


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    return Retriever(load_documents(KB_DIR))


def test_bundled_knowledge_base_loads_every_file() -> None:
    documents = load_documents(KB_DIR)
    assert [d.id for d in documents] == sorted(p.stem for p in KB_DIR.glob("*.md"))
    assert len(documents) >= 20


def test_document_has_title_and_one_line_text() -> None:
    refund = next(d for d in load_documents(KB_DIR) if d.id == "refund-policy")
    assert refund.title == "Refund Policy"
    assert refund.text.startswith("Nimbus Labs gives a full refund")
    # Paragraphs are joined into one line of text: no blank lines, no title marker.
    assert "\n" not in refund.text
    assert "#" not in refund.text


def test_missing_folder_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match="does not exist") as caught:
        load_documents(missing)
    assert str(missing) in str(caught.value)


def test_empty_folder_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not markdown", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no \.md documents") as caught:
        load_documents(tmp_path)
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [
        "Refund Policy\n\nNo title marker on the first line.\n",
        "#Refund Policy\n\nNo space after the marker.\n",
        "# Refund Policy\n\n   \n",  # a title and no text
        "",
    ],
    ids=["no-marker", "no-space", "no-text", "empty-file"],
)
def test_file_without_title_and_text_is_refused_naming_it(tmp_path: Path, content: str) -> None:
    (tmp_path / "good.md").write_text("# Good\n\nSome text.\n", encoding="utf-8")
    bad = tmp_path / "bad.md"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="# Title") as caught:
        load_documents(tmp_path)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize(
    ("question", "document"),
    [
        ("Can I get a refund?", "refund-policy"),
        ("How do I turn on two-factor authentication?", "two-factor-authentication"),
        ("What uptime do you guarantee?", "uptime-sla"),
        ("Where is my data stored?", "data-residency"),
        ("How much does the Team tier cost?", "plans-and-pricing"),
        ("Is there a discount for students?", "education-discount"),
        ("What are the API rate limits?", "api-rate-limits"),
    ],
)
def test_search_ranks_the_relevant_document_first(
    retriever: Retriever, question: str, document: str
) -> None:
    results = retriever.search(question, k=3)
    assert results[0].id == document


@pytest.mark.parametrize("query", ["banana zebra quantum", "the and of", ""])
def test_search_finds_nothing_for_off_topic_or_empty_queries(
    retriever: Retriever, query: str
) -> None:
    assert retriever.search(query, k=3) == []


@pytest.mark.parametrize("k", [1, 2, 5])
def test_search_returns_at_most_k_distinct_documents(retriever: Retriever, k: int) -> None:
    results = retriever.search("How much does the Team plan cost per user per month?", k=k)
    assert len(results) == k
    assert len({d.id for d in results}) == k


def test_search_results_are_a_prefix_of_longer_results(retriever: Retriever) -> None:
    question = "Where is my data stored?"
    assert retriever.search(question, k=2) == retriever.search(question, k=5)[:2]


def test_search_uses_the_thesaurus() -> None:
    # "yearly" only matches the document that says "annual" through the thesaurus.
    retriever = Retriever(
        [
            Document("billing", "Billing", "Annual subscriptions renew automatically."),
            Document("mobile", "Mobile", "The phone app works offline."),
        ]
    )
    assert [d.id for d in retriever.search("yearly", k=2)] == ["billing"]


def test_search_prefers_rare_terms() -> None:
    retriever = Retriever(
        [
            Document("a", "Workspace", "Workspace workspace export settings."),
            Document("b", "Workspace", "Workspace invoices."),
            Document("c", "Workspace", "Workspace members."),
        ]
    )
    # "workspace" is everywhere, so the rare "invoices" decides.
    assert retriever.search("workspace invoices", k=3)[0].id == "b"


def test_empty_retriever_finds_nothing() -> None:
    assert Retriever([]).search("refund", k=3) == []
