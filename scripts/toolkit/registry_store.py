"""Where a prompt rollout's registry lives: a folder here, or a ConfigMap on a cluster
(scripts/toolkit/traffic/kube/registry.py). Either way the change is a registry_ops function
run on a registry folder, so both stores make exactly the same changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")


class RegistryStore(Protocol):
    """Runs a read or a change of the registry on a folder holding it."""

    @property
    def where(self) -> str:
        """The registry's place, for messages (a folder, or `ConfigMap ns/name`)."""

    def read(self, look: Callable[[Path], T]) -> T:
        """`look` at the registry as it is now."""

    def change(self, edit: Callable[[Path], T], *, rollback: bool = False) -> T:
        """Run `edit` on the registry and keep what it leaves (only if it is a valid registry);
        `rollback`: a canary's retirement, bounded in time, whose outcome is never guessed."""


@dataclass(frozen=True)
class FolderStore:
    """A registry folder, changed in place (registry_ops writes atomically, under the lock the
    service's reloader waits for)."""

    folder: Path

    @property
    def where(self) -> str:
        return str(self.folder)

    def read(self, look: Callable[[Path], T]) -> T:
        return look(self.folder)

    def change(self, edit: Callable[[Path], T], *, rollback: bool = False) -> T:
        return edit(self.folder)
