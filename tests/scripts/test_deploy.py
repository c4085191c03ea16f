"""scripts.deploy orders builds by git history; the cluster CLIs refuse bad input, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.files import REPO_ROOT
from scripts import deploy, promote, rollback
from scripts.toolkit.cli import EXIT_USAGE, ToolkitError
from tests.support.kube_objects import shas


def test_a_newer_or_the_same_build_may_replace_the_live_one() -> None:
    new, live, _ = shas()
    assert deploy.check_newer(new, live, force=False, reason=None, repo=REPO_ROOT) is None
    assert deploy.check_newer(live, live, force=False, reason=None, repo=REPO_ROOT) is None
    # A live tag that names no commit (the overlay's first `latest`) orders nothing.
    assert deploy.check_newer(new, "latest", force=False, reason=None, repo=REPO_ROOT) is None


def test_an_older_build_is_refused_unless_forced_with_a_reason() -> None:
    _, live, old = shas()
    with pytest.raises(ToolkitError, match=f"{old} is older than the live {live}"):
        deploy.check_newer(old, live, force=False, reason=None, repo=REPO_ROOT)
    with pytest.raises(ToolkitError, match="--force needs --reason"):
        deploy.check_newer(old, live, force=True, reason=" ", repo=REPO_ROOT)
    note = deploy.check_newer(old, live, force=True, reason="revert #12", repo=REPO_ROOT)
    assert note == f"older than the live {live}, forced: revert #12"


def test_a_build_git_cannot_order_is_refused_unless_forced() -> None:
    unknown = "0" * 40
    with pytest.raises(ToolkitError, match=r"cannot tell whether .* fetch the history"):
        deploy.check_newer(unknown, shas()[1], force=False, reason=None, repo=REPO_ROOT)
    note = deploy.check_newer(unknown, shas()[1], force=True, reason="hotfix", repo=REPO_ROOT)
    assert note is not None and note.endswith(": hotfix")


@pytest.mark.parametrize(
    "argv",
    [
        ["rollback", "--backend", "gateway-api"],
        ["promote", "--backend", "replicas", "--to", "20"],
        ["deploy", "--backend", "rolling", "--sha", "abc1234"],
    ],
)
def test_a_cluster_command_without_a_kubeconfig_says_what_to_pass(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = {"rollback": rollback.main, "promote": promote.main, "deploy": deploy.main}[argv[0]]
    code = main([*argv[1:], "--kubeconfig", str(tmp_path / "missing")])
    assert code == EXIT_USAGE
    assert f"error: no kubeconfig at {tmp_path / 'missing'}; pass --kubeconfig" in (
        capsys.readouterr().err
    )


def test_dry_run_is_refused_for_the_local_platform(capsys: pytest.CaptureFixture[str]) -> None:
    assert rollback.main(["--backend", "local", "--dry-run"]) == EXIT_USAGE
    assert "--dry-run is for the cluster backends" in capsys.readouterr().err
