"""Shared fixtures: paths, a scratch copy of the registry, and real server processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.toolkit.processes import ManagedProcess, free_port, python_module
from tests.support.service import REPO, StartApp, app_launcher


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A scratch copy of registry/ that a test may change freely."""
    target = tmp_path / "registry"
    shutil.copytree(REPO / "registry", target)
    return target


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """The embedded model server (`python -m app.model_server`), one for the session."""
    proc = python_module(
        "model-server",
        "app.model_server",
        port=(port := free_port()),
        args=["--port", str(port)],
        log_dir=tmp_path_factory.mktemp("logs"),
        cwd=REPO,
    )
    proc.start().wait_http("/healthz")
    yield proc
    proc.stop()


@pytest.fixture
def start_app(tmp_path: Path, model_server: ManagedProcess) -> Iterator[StartApp]:
    """Start `python -m app` with extra APP_* settings; every app started is stopped afterwards.

    Defaults: the session's model server as provider, a scratch registry polled every 0.2 s,
    an admin token. Pass `wait="/readyz"` (default) or `wait=None` to skip waiting.
    """
    started: list[ManagedProcess] = []
    yield app_launcher(model_server, tmp_path, started)
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def start_module_app(
    tmp_path_factory: pytest.TempPathFactory, model_server: ManagedProcess
) -> Iterator[StartApp]:
    """`start_app` for apps shared by the tests of one module; stopped after the module."""
    started: list[ManagedProcess] = []
    yield app_launcher(model_server, tmp_path_factory.mktemp("apps"), started)
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def broken_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """An endpoint that times out, returns garbage or fails, by model name."""
    proc = python_module(
        "broken-provider",
        "tests.support.broken_provider",
        port=(port := free_port()),
        args=["--port", str(port)],
        log_dir=tmp_path_factory.mktemp("logs"),
        cwd=REPO,
    )
    proc.start().wait_http("/healthz")
    yield proc
    proc.stop()
