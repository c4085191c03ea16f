"""The seams of the repository: the toolkit reaches the service only through `contract/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from contract.files import REPO_ROOT

# package -> packages it must never import
FORBIDDEN = {
    "scripts": ("app",),
    "contract": ("app", "scripts"),
    "app": ("scripts",),
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages `path` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_none_of_its_forbidden_neighbours(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_packages(path) & set(FORBIDDEN[package]))
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}


def test_the_check_finds_an_import_hidden_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app.registry import store\n    import app.main\n")
    assert imported_packages(module) == {"app"}
