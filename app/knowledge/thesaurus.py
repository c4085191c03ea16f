"""The knowledge base's thesaurus (`thesaurus.yaml`): domain synonyms read into a Vocabulary."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from app.text import Vocabulary

THESAURUS_FILE = Path(__file__).with_name("thesaurus.yaml")


def load_thesaurus(path: Path = THESAURUS_FILE) -> dict[str, str]:
    """Each word of a group mapped to the group's first word; raises ValueError naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the thesaurus ({exc}).") from exc
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not all(
        isinstance(group, list) and group and all(isinstance(w, str) for w in group)
        for group in groups
    ):
        raise ValueError(f"{path}: expected `groups:`, a list of non-empty lists of words.")
    return {word.lower(): group[0].lower() for group in groups for word in group}


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary of the bundled knowledge base, loaded once per process."""
    return Vocabulary(load_thesaurus())
