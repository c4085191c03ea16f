"""The registry in a Kubernetes ConfigMap: one key per file, its folders joined by `--`.

ConfigMap keys may not contain `/` (they match `[-._a-zA-Z0-9]+`, at most 253 characters), so
`prompts/rag_answer/v1.yaml` is stored under the key `prompts--rag_answer--v1.yaml`. The
encoding is reversible only when no folder or file name contains `--` or ends with `-`; the
registry loader refuses such names, so every registry that loads fits a ConfigMap.

In a pod the ConfigMap is mounted flat (every key, current and future, appears as a file
without naming it in the pod spec) and `unflatten` writes the nested folder the service reads,
under the registry's writer lock so a reloading service never sees half a change:

    python -m contract.registry.configmap write [--registry registry] [--out FILE]
    python -m contract.registry.configmap unflatten --from /etc/registry-configmap \\
        --to /var/run/registry [--every 2]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from contract.files import REPO_ROOT, atomic_write
from contract.registry.writing import writing

SEPARATOR = "--"
CONFIGMAP_NAME = "ai-service-registry"
MANIFEST = REPO_ROOT / "k8s" / "base" / "registry-configmap.yaml"
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_HEADER = (
    "# Generated from registry/ by `./dev k8s-registry`; do not edit by hand (tests/k8s checks\n"
    "# that it matches registry/ exactly). Keys: contract/registry/configmap.py.\n"
)


def to_configmap_key(relative_path: str) -> str:
    """The ConfigMap key of a registry file (`models/m/v1/config.yaml` ->
    `models--m--v1--config.yaml`); a ValueError when the path cannot be encoded unambiguously."""
    parts = relative_path.split("/")
    for part in parts:
        if not part or part in (".", "..") or SEPARATOR in part or part.endswith("-"):
            raise ValueError(
                f"{relative_path}: the name {part!r} cannot be a ConfigMap key part (empty, "
                f"'.', '..', containing {SEPARATOR!r} or ending with '-'); rename it."
            )
    key = SEPARATOR.join(parts)
    if not _KEY.match(key):
        raise ValueError(
            f"{relative_path}: a ConfigMap key allows letters, digits, '-', '_' and '.' only, "
            "at most 253 characters; rename it."
        )
    return key


def from_configmap_key(key: str) -> str:
    """The registry path a ConfigMap key stands for (the inverse of `to_configmap_key`)."""
    path = key.replace(SEPARATOR, "/")
    if to_configmap_key(path) != key:
        raise ValueError(f"{key}: not a key made by to_configmap_key.")
    return path


def registry_files(root: Path) -> dict[str, str]:
    """Every visible file of the registry folder by its path (hidden files are writers' and
    editors' temporary files, as for the loader)."""
    files: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if not any(part.startswith(".") for part in relative.parts):
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
    return files


def manifest(root: Path) -> str:
    """The ConfigMap manifest of the registry folder `root`, as committed in k8s/base."""
    import yaml  # noqa: PLC0415  # only the generator needs it, not the pod's unflatten step

    class Literal(yaml.SafeDumper):
        """Multi-line files as `|` blocks, so the manifest reads like the files."""

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Literal.add_representer(str, text)
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "labels": {"app.kubernetes.io/name": "ai-service"},
        },
        "data": {to_configmap_key(p): t for p, t in registry_files(root).items()},
    }
    body = yaml.dump(document, Dumper=Literal, sort_keys=False, width=100, allow_unicode=True)
    return _HEADER + body


def read_flat(folder: Path) -> dict[str, bytes]:
    """The registry files held by a mounted ConfigMap folder, by registry path (the kubelet's
    own `..data` entries are hidden and skipped)."""
    files: dict[str, bytes] = {}
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith(".") and entry.is_file():
            files[from_configmap_key(entry.name)] = entry.read_bytes()
    return files


def read_data(data: dict[str, str]) -> dict[str, bytes]:
    """The registry files held by a ConfigMap's `data`, by registry path (as read through the
    Kubernetes API rather than a mount); a ValueError names a key that is not a registry path."""
    return {from_configmap_key(key): text.encode("utf-8") for key, text in sorted(data.items())}


def unflatten(source: Path, destination: Path) -> bool:
    """Make `destination` the nested registry of the flat ConfigMap folder `source`: changed
    files replaced atomically, removed ones deleted, all under the writer lock. Returns whether
    anything changed."""
    return write_nested(read_flat(source), destination)


def write_nested(wanted: dict[str, bytes], destination: Path) -> bool:
    """Make `destination` hold exactly `wanted` (registry path -> content), under the writer
    lock; whether anything changed."""
    destination.mkdir(parents=True, exist_ok=True)
    present = {
        p.relative_to(destination).as_posix(): p
        for p in destination.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(destination).parts)
    }
    stale = [p for name, p in present.items() if name not in wanted]
    changed = {n: d for n, d in wanted.items() if n not in present or present[n].read_bytes() != d}
    if not stale and not changed:
        return False
    with writing(destination):
        for name, data in changed.items():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        for path in stale:
            path.unlink()
        for folder in sorted((p for p in destination.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """`write` the committed manifest from registry/, or `unflatten` a mounted ConfigMap."""
    parser = argparse.ArgumentParser(
        prog="python -m contract.registry.configmap", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write the ConfigMap manifest of a registry folder")
    write.add_argument("--registry", type=Path, default=REPO_ROOT / "registry")
    write.add_argument("--out", type=Path, default=MANIFEST, help="'-' for stdout")
    flat = commands.add_parser("unflatten", help="mounted ConfigMap folder -> registry folder")
    flat.add_argument("--from", dest="source", type=Path, required=True)
    flat.add_argument("--to", dest="destination", type=Path, required=True)
    flat.add_argument("--every", type=float, default=0, help="repeat every N seconds (0: once)")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            text = manifest(args.registry)
            if str(args.out) == "-":
                sys.stdout.write(text)
            else:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(args.out, text)
            return 0
        while True:
            if unflatten(args.source, args.destination):
                print(f"registry updated in {args.destination}", file=sys.stderr, flush=True)
            if args.every <= 0:
                return 0
            time.sleep(args.every)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
