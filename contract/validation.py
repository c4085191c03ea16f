"""One sentence for a pydantic validation error: the first problem, with the field it names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class HasErrors(Protocol):
    """A pydantic `ValidationError`, or anything listing errors the same way (FastAPI's)."""

    def errors(self) -> Sequence[Any]:
        """Error dicts with `loc` and `msg`, first problem first."""
        ...


def first_error(error: HasErrors) -> str:
    """`field 'a.b': message` for the first error (or the bare message when it names no field)."""
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in first["loc"])
    return f"field '{where}': {message}" if where else message
