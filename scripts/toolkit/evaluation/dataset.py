"""The golden dataset: validated JSONL cases and the digest of the file they came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.files import REPO_ROOT
from contract.validation import first_error
from scripts.toolkit.cli import ToolkitError

DEFAULT_DATASET = "eval/golden.jsonl"


class GoldenCase(BaseModel):
    """One line of the golden dataset (JSONL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answerable: bool
    reference_answer: str
    required_facts: tuple[str, ...] = ()
    source_docs: tuple[str, ...] = ()
    category: str = "uncategorized"


@dataclass(frozen=True)
class Dataset:
    """The cases to run, and what identifies the file they came from."""

    path: str
    sha256: str
    cases: tuple[GoldenCase, ...]
    cases_in_file: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the file, its digest and how many of its cases ran."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "n": len(self.cases),
            "cases_in_file": self.cases_in_file,
        }


def load_dataset(path: str | Path = DEFAULT_DATASET, *, limit: int | None = None) -> Dataset:
    """Read and validate the JSONL file; `limit` keeps its first cases (quick runs). The one
    reader of the golden set: the evaluation, the smoke test and the load test all use it. A
    relative path is read from the current folder, else from the repository."""
    file = Path(path)
    if not (file.is_absolute() or file.exists()):
        file = REPO_ROOT / file
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ToolkitError(f"cannot read the golden dataset {file}: {exc.strerror}.") from exc
    cases: list[GoldenCase] = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(GoldenCase.model_validate_json(line))
        except ValidationError as exc:
            raise ToolkitError(f"{file} line {number}: {first_error(exc)}.") from exc
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ToolkitError(f"{file}: case ids must be unique.")
    if not cases:
        raise ToolkitError(f"{file}: no cases.")
    chosen = cases[:limit] if limit else cases
    return Dataset(str(path), hashlib.sha256(raw).hexdigest(), tuple(chosen), len(cases))
