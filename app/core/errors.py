"""The service's one exception type for expected failures, and the one sentence for bad input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contract.validation import first_error


class ServiceError(Exception):
    """An expected failure with an HTTP status and a one-sentence message for the caller."""

    def __init__(self, status_code: int, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        # Short machine-readable cause, used as a metric label.
        self.reason = reason


@dataclass(frozen=True)
class _Request:
    """A request's validation errors located inside their part (`body`, `header`, `query`)."""

    raw: Sequence[Any]

    def errors(self) -> list[dict[str, Any]]:
        return [{**error, "loc": tuple(error["loc"][1:])} for error in self.raw]


def invalid_request(errors: Sequence[Any]) -> str:
    """One sentence for the first of a request's validation `errors` (FastAPI's `.errors()`)."""
    sentence = first_error(_Request(errors)).rstrip(".")
    return f"{sentence[:1].upper()}{sentence[1:]}."
