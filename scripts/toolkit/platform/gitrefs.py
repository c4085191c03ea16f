"""Git refs of this repository: the version of the checkout, and worktrees of other refs."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404  # runs git with a fixed argv, never a shell
from dataclasses import dataclass
from pathlib import Path

from contract.files import REPO_ROOT
from scripts.toolkit.cli import ToolkitError

GIT_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Revision:
    """A commit: its full SHA, and the short one used as APP_VERSION (an image tag's twin)."""

    sha: str
    short: str


def git(*args: str, repo: Path = REPO_ROOT) -> str:
    """Run `git args...` in `repo`; its stdout, or a ToolkitError with git's last words."""
    binary = shutil.which("git")
    if binary is None:
        raise ToolkitError("git is not installed; install it to deploy other refs.")
    try:
        result = subprocess.run(  # noqa: S603  # nosec B603  # fixed argv, no shell
            [binary, *args],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolkitError(f"git {args[0]} took over {GIT_TIMEOUT_SECONDS:.0f} s.") from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise ToolkitError(f"git {' '.join(args)} failed: {last}")
    return result.stdout.strip()


def checkout_revision(repo: Path = REPO_ROOT) -> Revision | None:
    """The commit checked out in `repo`, or None when it is not a git checkout."""
    try:
        return resolve("HEAD", repo=repo)
    except ToolkitError:
        return None


def resolve(ref: str, *, repo: Path = REPO_ROOT) -> Revision:
    """The commit `ref` names (a SHA, branch, tag or `HEAD~1`)."""
    if not ref or ref.startswith("-"):
        raise ToolkitError(f"{ref!r} is not a git ref.")
    try:
        sha = git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", repo=repo
        )
    except ToolkitError as exc:
        raise ToolkitError(f"{ref!r} names no commit of {repo}; fetch it or fix the ref.") from exc
    return Revision(sha=sha, short=git("rev-parse", "--short", sha, repo=repo))


def add_worktree(revision: Revision, *, parent: Path, repo: Path = REPO_ROOT) -> Path:
    """A detached worktree of `revision` under `parent` (reused when it exists already)."""
    path = parent / revision.sha[:12]
    if (path / ".git").exists():
        if git("rev-parse", "HEAD", repo=path) == revision.sha:
            return path
        remove_worktree(path, repo=repo)
    parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "--detach", str(path), revision.sha, repo=repo)
    return path


def remove_worktree(path: Path, *, repo: Path = REPO_ROOT) -> None:
    """Remove a worktree this platform created (gone already is fine)."""
    if not path.exists():
        return
    try:
        git("worktree", "remove", "--force", str(path), repo=repo)
    except ToolkitError:
        # Not (or no longer) registered with git: only the folder is left.
        shutil.rmtree(path, ignore_errors=True)
