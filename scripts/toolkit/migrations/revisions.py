"""The revision files of a checkout, read without importing them: id, parent, phase.

Every revision says `phase = "expand"` (adds only: runs before the rollout, while the previous
release serves) or `phase = "contract"` (removes: runs once the previous release is fully
promoted); a contract revision also names the expand revision it completes:
`expand_revision = "<id>"`, which must have shipped in an earlier release.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from scripts.toolkit.migrations.changes import VERSIONS

PHASES = ("expand", "contract")


@dataclass(frozen=True)
class RevisionFile:
    """One revision file's markers."""

    path: str  # relative to the checkout
    revision: str | None
    down_revision: str | None
    phase: str | None
    expand_revision: str | None


def _constants(source: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                    found[target.id] = node.value.value
    return found


def read_revisions(checkout: Path) -> dict[str, RevisionFile]:
    """Every revision file of `checkout`, by path (relative, POSIX)."""
    folder = checkout / VERSIONS
    files = {}
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        if path.name == "__init__.py":
            continue
        values = _constants(path.read_text(encoding="utf-8"))
        relative = path.relative_to(checkout).as_posix()

        def text(name: str, values: dict[str, object] = values) -> str | None:
            value = values.get(name)
            return value if isinstance(value, str) else None

        files[relative] = RevisionFile(
            relative, text("revision"), text("down_revision"), text("phase"),
            text("expand_revision"),
        )  # fmt: skip
    return files


def heads(revisions: dict[str, RevisionFile]) -> list[str]:
    """Revisions no other revision follows."""
    parents = {r.down_revision for r in revisions.values()}
    return sorted(
        r.revision for r in revisions.values() if r.revision and r.revision not in parents
    )


def check_revisions(
    head: dict[str, RevisionFile], base: dict[str, RevisionFile], new: tuple[str, ...]
) -> list[str]:
    """One sentence per broken rule among the head's revisions (new ones in particular)."""
    problems = []
    for path in new:
        r = head[path]
        if r.revision is None:
            problems.append(f'{path} is not an Alembic revision (no `revision = "..."`).')
        if r.phase not in PHASES:
            problems.append(
                f'phase marker: {path} says neither phase = "expand" nor phase = "contract"; '
                "add the one it is (DEPLOYING.md, Database migrations)."
            )
    tips = heads(head)
    if len(tips) > 1:
        problems.append(
            f"single head: the migrations have {len(tips)} heads ({', '.join(tips)}); set the "
            "down_revision of the newer one to the other, so there is one chain."
        )
    shipped = {r.revision: r for r in base.values() if r.revision}
    by_id = {r.revision: r for r in head.values() if r.revision}
    for path in new:
        r = head[path]
        if r.phase != "contract":
            continue
        expand = by_id.get(r.expand_revision or "")
        if r.expand_revision is None or expand is None or expand.phase != "expand":
            problems.append(
                f"contract after expand: contract revision {r.revision} names no expand "
                'revision it completes; set expand_revision = "<id>" to the shipped expand '
                "revision whose old columns or tables it removes."
            )
        elif r.expand_revision not in shipped:
            problems.append(
                f"contract after expand: contract revision {r.revision} ships in the same "
                f"release as expand revision {r.expand_revision} it completes; ship the expand "
                "(and the code that stops using what it replaces) first, and this contract "
                "revision in a later release, once that one is fully promoted."
            )
    return problems
