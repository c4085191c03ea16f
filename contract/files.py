"""The repository's root folder and the one way this project replaces a file atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` through a hidden temporary file and a rename, so a reader (or an
    interruption) sees the old file or the new one, never a mix."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
