"""Documents and a small BM25 retriever over the bundled knowledge base."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from app.knowledge.thesaurus import vocabulary


@dataclass(frozen=True)
class Document:
    """A context document: an id, a title and plain text."""

    id: str
    title: str
    text: str


@dataclass
class Retriever:
    """Okapi BM25 over whole documents; built once, read-only afterwards (safe to share)."""

    documents: list[Document]
    k1: float = 1.2
    b: float = 0.75
    _postings: dict[str, list[tuple[int, int]]] = field(init=False, default_factory=dict)
    _lengths: list[int] = field(init=False, default_factory=list)
    _idf: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for index, doc in enumerate(self.documents):
            counts = Counter(vocabulary().terms(f"{doc.title} {doc.text}"))
            self._lengths.append(sum(counts.values()))
            for term, count in counts.items():
                self._postings.setdefault(term, []).append((index, count))
        n = len(self.documents)
        self._idf = {
            term: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
            for term, p in self._postings.items()
        }
        self._avg_length = (sum(self._lengths) / n) if n else 0.0

    def search(self, query: str, *, k: int) -> list[Document]:
        """The `k` best documents for `query`, best first; none when nothing matches."""
        scores: dict[int, float] = {}
        for term in set(vocabulary().terms(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for index, count in self._postings[term]:
                norm = self.k1 * (1 - self.b + self.b * self._lengths[index] / self._avg_length)
                scores[index] = scores.get(index, 0.0) + idf * count * (self.k1 + 1) / (
                    count + norm
                )
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [self.documents[index] for index, _ in best]


def load_documents(directory: Path) -> list[Document]:
    """Read `<id>.md` files whose first line is `# Title`; raises ValueError naming a bad file."""
    if not directory.is_dir():
        raise ValueError(
            f"Knowledge base folder {directory} does not exist; set APP_KNOWLEDGE_DIR."
        )
    documents = []
    for path in sorted(directory.glob("*.md")):
        head, _, body = path.read_text(encoding="utf-8").partition("\n")
        if not head.startswith("# ") or not body.strip():
            raise ValueError(f"{path}: expected a '# Title' line followed by text.")
        documents.append(
            Document(id=path.stem, title=head[2:].strip(), text=" ".join(body.split()))
        )
    if not documents:
        raise ValueError(f"Knowledge base folder {directory} holds no .md documents.")
    return documents
