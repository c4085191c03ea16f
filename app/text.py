"""Text helpers shared by retrieval, the embedded model and the quality signals."""

from __future__ import annotations

import re
from collections.abc import Iterable
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

# A small domain thesaurus: each group's words count as its first word. Retrieval, the embedded
# model's stronger variant and groundedness all read text through it, the way an embedding model
# would treat these words as close.
_GROUPS = """plan tier tiers
user users seat seats member members people person teammate teammates colleague colleagues
bill billed billing pay paid paying payment payments charge charged charges
cost costs price prices pricing fee fees
annual annually yearly
monthly month months
buy bought purchase purchased
card cards credit
bank wire
refund refunds refunded reimburse money
delete deleted deletes remove removed erase erased purge purged
retain retained retention keep kept
phone phones mobile tablet tablets iphone android ios
encrypt encrypted encryption cipher
maximum max largest biggest most
minimum min smallest least
trial trials try test
attachment attachments file files upload uploads
reply replies respond response responses answer
region regions location located host hosted residency geographic
version versions snapshot snapshots revision revisions history
log logs logged record records
login logins signin
deactivate deactivated disable disabled suspend suspended
company companies organization organizations organisation
support help helpdesk
guarantee guaranteed sla commitment
languages language
""".splitlines()
SYNONYMS = {word: group.split()[0] for group in _GROUPS for word in group.split()}


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


@lru_cache(maxsize=65_536)
def normalize(word: str) -> str:
    """A word's canonical form: its thesaurus group, else its stem."""
    return SYNONYMS.get(word) or SYNONYMS.get(stem(word)) or stem(word)


def terms(text: str, *, normalized: bool = True) -> list[str]:
    """Content terms: tokens without stop words, normalized (stem, thesaurus) by default."""
    words = (w for w in tokens(text) if w not in STOPWORDS)
    return [normalize(w) for w in words] if normalized else list(words)


@lru_cache(maxsize=16_384)
def term_set(text: str, *, normalized: bool = True) -> frozenset[str]:
    """The set of `terms` of a text, memoized: knowledge-base sentences recur in every prompt."""
    return frozenset(terms(text, normalized=normalized))


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
