"""Holds the serving registry and swaps in a new one only when it loads and validates in full."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract.registry.configmap import write_nested
from contract.registry.loader import Registry, RegistryError, folder_digest, load_registry
from contract.registry.writing import writer_active

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload attempt did: `unchanged`, `deferred` (a writer holds the lock), `reloaded`
    or `rejected` (with the error). Only `reloaded` and `rejected` reach the `on_reload` hook."""

    outcome: str
    digest: str
    error: str | None = None


class RegistryStore:
    """The current registry; a malformed change is refused and the last good one keeps serving."""

    def __init__(
        self, root: Path, *, on_reload: Callable[[ReloadResult, Registry], None] | None = None
    ) -> None:
        self.root = root
        self.current: Registry = load_registry(root)
        self.last_error: str | None = None
        self.last_success = time.time()
        self._rejected_digest: str | None = None
        self._on_reload = on_reload
        self._lock = threading.RLock()  # the folder poll, the admin route and adopt() meet here

    def reload(self, *, force: bool = False) -> ReloadResult:
        """Load the folder again if it changed (or when forced); never drops the last good one."""
        with self._lock:
            return self._reload(force=force)

    def adopt(self, files: dict[str, bytes], *, source: str) -> ReloadResult:
        """Serve `files` (registry path -> content, e.g. from the registry ConfigMap) when they
        load and validate in full: checked in a scratch folder first, then written to the
        registry folder and loaded. A bad set is refused and the folder keeps the last good one."""
        with self._lock, tempfile.TemporaryDirectory(prefix="registry-candidate-") as scratch:
            write_nested(files, Path(scratch))
            digest = folder_digest(Path(scratch))
            if digest == self.current.digest and self.last_error is None:
                write_nested(files, self.root)  # e.g. a restarted pod's stale mounted copy
                return ReloadResult("unchanged", digest)
            try:
                load_registry(Path(scratch))
            except (RegistryError, OSError) as exc:
                return self.refuse(str(exc).replace(scratch, source), digest)
            write_nested(files, self.root)
            return self._reload(force=True)

    def refuse(self, error: str, digest: str = "") -> ReloadResult:
        """Record a change that cannot serve (the last good registry keeps serving)."""
        with self._lock:
            self._rejected_digest = digest or None
            self.last_error = error
            return self._finish(ReloadResult("rejected", digest, error), log_it=True)

    def _reload(self, *, force: bool) -> ReloadResult:
        try:
            digest = folder_digest(self.root)
        except OSError as exc:
            return self._finish(ReloadResult("rejected", "", f"{self.root}: {exc}."), log_it=True)
        if not force and writer_active(self.root):
            return ReloadResult("deferred", digest)
        if not force and digest == self.current.digest:
            if self.last_error is not None:
                # A refused change was reverted: the folder holds what is serving again.
                log.info("registry folder is back to %s; change error cleared", digest[:12])
                self.last_error = None
                self._rejected_digest = None
            return ReloadResult("unchanged", digest)
        if not force and digest == self._rejected_digest:
            return ReloadResult("unchanged", digest)
        try:
            registry = load_registry(self.root)
        except (RegistryError, OSError) as exc:
            self._rejected_digest = digest
            self.last_error = str(exc)
            return self._finish(ReloadResult("rejected", digest, str(exc)), log_it=True)
        changed = registry.digest != self.current.digest
        self.current = registry
        self.last_error = None
        self._rejected_digest = None
        self.last_success = time.time()
        return self._finish(ReloadResult("reloaded" if changed else "unchanged", registry.digest))

    def _finish(self, result: ReloadResult, *, log_it: bool = False) -> ReloadResult:
        if log_it:
            log.error(
                "registry change refused, still serving %s: %s",
                self.current.digest[:12],
                result.error,
            )
        elif result.outcome == "reloaded":
            log.info("registry reloaded: %s", self.current.summary()["prompts"])
        if self._on_reload is not None and result.outcome in ("reloaded", "rejected"):
            self._on_reload(result, self.current)
        return result

    async def watch(self, interval: float) -> None:
        """Poll the folder every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            # Reading a few small files; a thread keeps the event loop free meanwhile.
            await asyncio.to_thread(self.reload)
