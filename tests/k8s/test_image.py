"""The Dockerfile built for real with buildah, from a local stand-in for its base image, then
run: the service answers /readyz, as the non-root UID, with no compiler in the image.

No image registry is reachable here, so the stand-in for `python:3.11-slim-bookworm` is made
with debootstrap (Debian bookworm minbase, python3, python3-venv), cached as a tarball under
.local/image/ so later runs skip it; pip in the build still installs the runtime lock from
PyPI. Needs root, buildah and debootstrap (`./dev setup`): without them the test skips, and
fails under CI=true. First run about 3 minutes (debootstrap), later ones about 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.toolkit.processes import free_port
from tests.support.service import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

WORK = REPO / ".local" / "image"
BASE_TARBALL = WORK / "bookworm-python3.tar"
BASE_IMAGE = "localhost/python-standin:3.11-bookworm"
IMAGE = "localhost/ai-service:test"
MIRROR = "http://deb.debian.org/debian"
UID = "10001"


def buildah_command(*args: str) -> list[str]:
    """buildah with this test's own storage (vfs: no kernel overlay support needed)."""
    storage = ["--root", str(WORK / "storage"), "--runroot", str(WORK / "run")]
    return [shutil.which("buildah") or "buildah", *storage, "--storage-driver", "vfs", *args]


def buildah(*args: str, timeout: float = 600, check: bool = True) -> str:
    result = subprocess.run(
        buildah_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert not check or result.returncode == 0, f"buildah {args[0]}: {result.stderr[-3000:]}"
    return result.stdout.strip()


def require_tools() -> None:
    """Skip where the tools cannot run; in CI, fail saying what is missing."""
    missing = [t for t in ("buildah", "debootstrap") if not shutil.which(t)]
    problem = (
        f"{', '.join(missing)} not installed (./dev setup installs them)"
        if missing
        else "needs root (debootstrap, buildah's chroot isolation)"
        if os.geteuid() != 0
        else None
    )
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the image test cannot run: {problem}")
    pytest.skip(problem)


def base_tarball() -> Path:
    """Debian bookworm with Python 3.11 as a root filesystem tarball (made once)."""
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    rootfs = WORK / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run(
        [
            shutil.which("debootstrap") or "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,python-is-python3,ca-certificates",
            "bookworm",
            str(rootfs),
            MIRROR,
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        shutil.rmtree(rootfs / junk, ignore_errors=True)
    # The stand-in trusts what this machine trusts, as pip's HTTPS in the build may need.
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    partial = BASE_TARBALL.with_suffix(".partial")
    tar = shutil.which("tar") or "tar"
    subprocess.run([tar, "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
    partial.replace(BASE_TARBALL)
    shutil.rmtree(rootfs)
    return BASE_TARBALL


def base_image() -> str:
    """The stand-in imported into buildah's storage under BASE_IMAGE (once)."""
    if buildah("images", "-q", BASE_IMAGE, check=False):
        return BASE_IMAGE
    container = buildah("from", "scratch")
    try:
        buildah("add", container, str(base_tarball()), "/")
        buildah(
            "config",
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--cmd",
            '["python3"]',
            container,
        )
        buildah("commit", "-q", container, BASE_IMAGE)
    finally:
        buildah("rm", container, check=False)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    require_tools()
    WORK.mkdir(parents=True, exist_ok=True)
    sha = (
        subprocess.run(
            [shutil.which("git") or "git", "rev-parse", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    base = base_image()
    started = time.monotonic()
    buildah(
        "bud",
        "--isolation",
        "chroot",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"GIT_SHA={sha}",
        "-t",
        IMAGE,
        "-f",
        str(REPO / "Dockerfile"),
        str(REPO),
        timeout=900,
    )
    print(f"image built in {time.monotonic() - started:.0f} s")
    yield IMAGE
    # vfs storage keeps whole copies: drop this build (the cached base image stays).
    buildah("rmi", "-f", IMAGE, check=False)
    buildah("rmi", "--prune", check=False)


@contextlib.contextmanager
def container(image: str) -> Iterator[str]:
    name = buildah("from", "-q", image)
    try:
        yield name
    finally:
        buildah("rm", name, check=False)


def test_the_image_runs_as_non_root_without_a_compiler(image: str) -> None:
    config = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    assert config["User"] == f"{UID}:{UID}"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == labels["org.opencontainers.image.version"]
    assert f"APP_GIT_SHA={labels['org.opencontainers.image.revision']}" in config["Env"]
    with container(image) as name:
        assert buildah("run", "--isolation", "chroot", name, "--", "id", "-u") == UID
        found = buildah(
            "run",
            "--isolation",
            "chroot",
            name,
            "--",
            "sh",
            "-c",
            "command -v gcc cc g++ make || echo none",
        )
        assert found == "none"


def test_the_service_in_the_image_becomes_ready(image: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "service.log"
    with container(image) as name, log.open("wb") as out:
        process = subprocess.Popen(
            buildah_command(
                "run", "--isolation", "chroot",
                "--env", "APP_HOST=127.0.0.1", "--env", f"APP_PORT={port}",
                name, "--", "python", "-m", "app",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline, ready = time.monotonic() + 90, ""
            while time.monotonic() < deadline and process.poll() is None and not ready:
                url = f"http://127.0.0.1:{port}/readyz"
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                    ready = r.read().decode()
                time.sleep(0.5)
            assert '"ready"' in ready, f"not ready in 90 s:\n{log.read_text()[-3000:]}"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group this test started
                process.wait(timeout=10)
