"""Generic text helpers shared by retrieval, the embedded model and the quality signals."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

_TOKEN = re.compile(r"\$?[a-z0-9]+(?:[.,][0-9]+)*%?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[$])")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves get got also may might must shall within per via us let lets please tell
    know don doesn isn aren won can't t s m re ve ll d long many much often soon quickly far
    happen happens does""".split()
)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, numbers and prices kept whole (`$8`, `99.9%`)."""
    return _TOKEN.findall(text.lower())


def stem(word: str) -> str:
    """A light suffix stripper: enough to match `plans`/`plan` and `billed`/`billing`."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    for suffix in ("ing", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


class Vocabulary:
    """Reads text as content terms: stop words dropped, words stemmed, synonyms merged.

    `synonyms` maps a word (or its stem) to its canonical term; the domain's thesaurus lives
    with the knowledge base (`app/knowledge/`), not here. Results are memoized per instance:
    knowledge-base sentences recur in every prompt.
    """

    def __init__(self, synonyms: Mapping[str, str] | None = None) -> None:
        self.synonyms = dict(synonyms or {})
        self.normalize: Callable[[str], str] = lru_cache(maxsize=65_536)(self._normalize)
        self._term_set = lru_cache(maxsize=16_384)(self._terms_frozen)

    def _normalize(self, word: str) -> str:
        stemmed = stem(word)
        return self.synonyms.get(word) or self.synonyms.get(stemmed) or stemmed

    def terms(self, text: str, *, normalized: bool = True) -> list[str]:
        """Content terms: tokens without stop words, normalized (stem, synonyms) by default."""
        words = (w for w in tokens(text) if w not in STOPWORDS)
        return [self.normalize(w) for w in words] if normalized else list(words)

    def _terms_frozen(self, text: str, normalized: bool) -> frozenset[str]:
        return frozenset(self.terms(text, normalized=normalized))

    def term_set(self, text: str, *, normalized: bool = True) -> frozenset[str]:
        """The set of `terms` of a text, memoized."""
        return self._term_set(text, normalized)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences on end punctuation followed by a capital or a digit."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text


def count_tokens(text: str) -> int:
    """Approximate model tokens: about one per four characters, as OpenAI's guidance puts it."""
    return -(-len(text) // CHARS_PER_TOKEN)


def truncate_tokens(text: str, limit: int) -> tuple[str, bool]:
    """Cut a text after about `limit` tokens at a word boundary; returns it and whether cut."""
    budget = limit * CHARS_PER_TOKEN
    if len(text) <= budget:
        return text, False
    cut = text.rfind(" ", 0, budget + 1)
    return text[: cut if cut > 0 else budget].rstrip(), True


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(items))
