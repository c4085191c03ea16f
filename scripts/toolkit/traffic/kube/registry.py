"""The registry ConfigMap as a prompt rollout's store: read, changed in a scratch folder by the
same registry_ops function as a local registry, checked with the contract's loader, written back.

The write is one JSON Patch of the keys that changed (added, replaced, removed; every other key
is left as it is), whose first operation `test`s the resourceVersion that was read: when another
writer changed the ConfigMap in between, the API answers 409/422, and the change is re-read and
re-applied to the new content (bounded attempts), never written over it. A result the loader
refuses is never written (the monitor's progress, an annotation, is merge-patched apart).
With --dry-run the patches are printed, not sent, and the command's next change starts from
what the printed ones would leave. A rollback is bounded by
--api-timeout; when the API cannot confirm it, the command says the registry state is unknown
and exits 4 (EXIT_TRAFFIC_UNKNOWN).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from contract.registry.configmap import (
    CONFIGMAP_NAME,
    read_data,
    registry_files,
    to_configmap_key,
    write_nested,
)
from contract.registry.loader import RegistryError, load_registry
from scripts.toolkit.cli import EXIT_TRAFFIC_UNKNOWN, ToolkitError
from scripts.toolkit.traffic.kube.client import (
    JSON_PATCH,
    Conflict,
    Json,
    Kube,
    NotFound,
    Unreachable,
)
from scripts.toolkit.traffic.kube.common import KeepsState, bounded
from scripts.toolkit.traffic.kube.workloads import json_pointer, resource_version

T = TypeVar("T")
ATTEMPTS = 10


def data_patch(version: str, before: dict[str, str], after: dict[str, str]) -> list[Json]:
    """The JSON Patch from registry files `before` to `after` (by registry path), pinned to the
    ConfigMap's resourceVersion `version`; only the `test` when nothing changed."""
    ops: list[Json] = [{"op": "test", "path": "/metadata/resourceVersion", "value": version}]
    for path in sorted(before.keys() | after.keys()):
        at = json_pointer("data", to_configmap_key(path))
        if path not in after:
            ops.append({"op": "remove", "path": at})
        elif path not in before:
            ops.append({"op": "add", "path": at, "value": after[path]})
        elif before[path] != after[path]:
            ops.append({"op": "replace", "path": at, "value": after[path]})
    return ops


@dataclass
class ConfigMapStore(KeepsState):
    """The registry in ConfigMap `name` of the client's namespace; the monitor's progress is an
    annotation on it (`ai-rollout-template/monitor`), so a monitor on another machine resumes."""

    kube: Kube
    name: str = CONFIGMAP_NAME
    # In dry-run: the ConfigMap as the printed patches would leave it, so that the next change
    # of the same command (`--add` then `--candidate`) starts from it, as it would for real.
    _pending: Json | None = field(default=None, init=False, repr=False)

    @property
    def where(self) -> str:
        return f"ConfigMap {self.kube.namespace}/{self.name}"

    def _path(self) -> str:
        return self.kube.path("v1", "configmaps", self.name)

    def state_path(self) -> str:
        return self._path()

    def assignment(self) -> str:
        """Prompt versions are assigned by user, inside the service."""
        return "user"

    def _fetch(self) -> Json:
        if self._pending is not None:
            return self._pending
        try:
            return self.kube.get(self._path())
        except NotFound:
            raise ToolkitError(
                f"{self.where} does not exist; apply an overlay of k8s/ in that namespace, or "
                "fix --namespace/--registry-configmap."
            ) from None

    def _checkout(self, configmap: Json, folder: Path) -> dict[str, str]:
        """Write the ConfigMap's registry into `folder`; its files by registry path."""
        try:
            write_nested(read_data(configmap.get("data") or {}), folder)
        except ValueError as exc:
            raise ToolkitError(
                f"{self.where} holds a key that is not a registry file ({exc}); regenerate it "
                "with `./dev k8s-registry` and apply it."
            ) from exc
        return registry_files(folder)

    def _named(self, exc: ToolkitError, folder: Path) -> ToolkitError:
        """`exc` with the scratch folder's path replaced by the ConfigMap's name."""
        message = exc.message.replace(f"{folder}/", f"{self.where}: ").replace(
            str(folder), self.where
        )
        return ToolkitError(message, exit_code=exc.exit_code)

    def _invalid(self, folder: Path) -> str | None:
        """Why the registry in `folder` does not load (paths relative to it), or None."""
        try:
            load_registry(folder)
        except RegistryError as exc:
            return str(exc).replace(f"{folder}/", "").replace(str(folder), "the registry")
        return None

    def read(self, look: Callable[[Path], T]) -> T:
        with tempfile.TemporaryDirectory(prefix="registry-") as tmp:
            folder = Path(tmp) / "registry"
            self._checkout(self._fetch(), folder)
            try:
                return look(folder)
            except ToolkitError as exc:
                raise self._named(exc, folder) from exc

    def change(self, edit: Callable[[Path], T], *, rollback: bool = False) -> T:
        if not rollback:
            return self._change(edit)
        try:
            with bounded(self.kube, self.kube.api_timeout):
                return self._change(edit)
        except Unreachable as exc:
            raise ToolkitError(
                f"registry state unknown: the rollback in {self.where} could not be confirmed "
                f"({exc.message}); the canary may still serve: run the rollback again until it "
                "succeeds.",
                exit_code=EXIT_TRAFFIC_UNKNOWN,
            ) from exc

    def _change(self, edit: Callable[[Path], T]) -> T:
        lost: tuple[str, Conflict] | None = None  # the version a refused patch pinned, and why
        for _ in range(ATTEMPTS):
            configmap = self._fetch()
            if lost is not None and resource_version(configmap) == lost[0]:
                # Nobody else wrote: the 422 was the API refusing the content (too large, ...).
                raise ToolkitError(
                    f"the Kubernetes API refused the change to {self.where} ({lost[1].message}); "
                    "fix what it names, then run again."
                )
            with tempfile.TemporaryDirectory(prefix="registry-") as tmp:
                folder = Path(tmp) / "registry"
                before = self._checkout(configmap, folder)
                problem = self._invalid(folder)
                if problem:
                    raise ToolkitError(
                        f"{self.where} is not a valid registry ({problem}); fix it first."
                    )
                try:
                    result = edit(folder)
                except ToolkitError as exc:
                    raise self._refused(folder) or self._named(exc, folder) from exc
                refused = self._refused(folder)
                if refused:
                    raise refused
                after = registry_files(folder)
                ops = data_patch(resource_version(configmap), before, after)
            if len(ops) == 1:
                return result  # nothing to change (an idempotent re-run)
            try:
                self.kube.patch(self._path(), ops, content_type=JSON_PATCH, guarded=True)
            except Conflict as exc:
                lost = (resource_version(configmap), exc)
                continue  # another writer was first: re-read, and apply the change to that
            if self.kube.dry_run:
                data = {to_configmap_key(path): text for path, text in after.items()}
                self._pending = {**configmap, "data": data}
            return result
        raise ToolkitError(
            f"{self.where} changed {ATTEMPTS} times while the registry change was written; find "
            "what else edits it, then run again."
        )

    def _refused(self, folder: Path) -> ToolkitError | None:
        problem = self._invalid(folder)
        if problem is None:
            return None
        return ToolkitError(
            f"refused: the change would make {self.where} an invalid registry ({problem}); "
            "nothing was written."
        )
