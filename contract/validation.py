"""One sentence for a pydantic validation error: the first problem, with the field it names."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(error: ValidationError) -> str:
    """`field 'a.b': message` for the first error (or the bare message when it names no field)."""
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in first["loc"])
    return f"field '{where}': {message}" if where else message
