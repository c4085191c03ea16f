"""What a change (base..head) holds: new revisions, edited ones, application code, a pairing.

Application code is what ships in the service's image and reads or writes the schema: `app/`
outside `app/migrations/`, and `contract/`. A change holding both a new revision and such code
is refused unless one of its commits carries the trailer `Migration-Pairing: <reason>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scripts.toolkit.platform.gitrefs import git

VERSIONS = PurePosixPath("app/migrations/versions")
MIGRATIONS = PurePosixPath("app/migrations")
APP_CODE = (PurePosixPath("app"), PurePosixPath("contract"))
PAIRING_TRAILER = "Migration-Pairing"


@dataclass(frozen=True)
class Change:
    """The files of base..head that the gate reads."""

    base: str
    head: str
    new_revisions: tuple[str, ...]  # paths of added revision files
    edited_revisions: tuple[str, ...]  # revision files changed or removed: shipped ones
    app_code: tuple[str, ...]
    pairing: str | None  # the reason given by a Migration-Pairing trailer

    @property
    def has_migration(self) -> bool:
        return bool(self.new_revisions or self.edited_revisions)


def _is_revision(path: PurePosixPath) -> bool:
    return path.parent == VERSIONS and path.suffix == ".py" and path.name != "__init__.py"


def _is_app_code(path: PurePosixPath) -> bool:
    if path.is_relative_to(MIGRATIONS):
        return False
    return path.suffix == ".py" and any(path.is_relative_to(root) for root in APP_CODE)


def read_change(repo: Path, base: str, head: str) -> Change:
    """Classify the files base..head changes, and find a pairing trailer in its commits."""
    new: list[str] = []
    edited: list[str] = []
    code: list[str] = []
    for line in git("diff", "--name-status", "--no-renames", base, head, repo=repo).splitlines():
        status, _, name = line.partition("\t")
        path = PurePosixPath(name)
        if _is_revision(path):
            (new if status == "A" else edited).append(name)
        elif _is_app_code(path):
            code.append(name)
    trailers = git(
        "log", f"--format=%(trailers:key={PAIRING_TRAILER},valueonly,separator=%x00)",
        f"{base}..{head}", repo=repo,
    )  # fmt: skip
    reasons = [r.strip() for r in trailers.replace("\x00", "\n").splitlines() if r.strip()]
    return Change(base, head, tuple(new), tuple(edited), tuple(code), "; ".join(reasons) or None)
