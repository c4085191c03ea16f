"""Columns the code no longer maps but the schema still holds until their contract revision.

A release that stops using a column removes it from app/db/models.py and names it here; the
model-versus-schema check then leaves it out. The contract revision that drops the column (one
release later) removes its name from this mapping.
"""

from __future__ import annotations

RETIRED_COLUMNS: dict[str, frozenset[str]] = {}
