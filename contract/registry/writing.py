"""How a writer changes the registry folder so that a reading service never sees half a change.

Every file is replaced atomically (`contract.files.atomic_write`), and a change of several files
is written while `.writing` exists: the service's reloader waits for it to go (or to go stale,
after `WRITER_LOCK_TTL_SECONDS`, when its writer died) before it reads the folder.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

WRITER_LOCK = ".writing"
WRITER_LOCK_TTL_SECONDS = 30.0


@contextlib.contextmanager
def writing(registry_dir: Path) -> Iterator[None]:
    """Hold the registry's writer lock while a multi-file change is written."""
    lock = registry_dir / WRITER_LOCK
    lock.write_text(f"pid {os.getpid()}\n", encoding="utf-8")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def writer_active(registry_dir: Path) -> bool:
    """Whether a writer holds the lock now (a lock older than the TTL is a dead writer's)."""
    try:
        return time.time() - (registry_dir / WRITER_LOCK).stat().st_mtime < WRITER_LOCK_TTL_SECONDS
    except FileNotFoundError:
        return False
