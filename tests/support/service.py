"""Start the reference service as a real process for tests, with test settings."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from contract.files import REPO_ROOT as REPO
from scripts.toolkit.processes import ManagedProcess, free_port, python_module

ADMIN_TOKEN = "test-admin-token-0123456789"

StartApp = Callable[..., ManagedProcess]


def app_launcher(
    model_server: ManagedProcess, workdir: Path, started: list[ManagedProcess]
) -> StartApp:
    """A `start(*, wait, **settings)` function that records every app it starts in `started`."""

    def start(*, wait: str | None = "/readyz", **settings: str) -> ManagedProcess:
        port = free_port()
        env = {
            "APP_PORT": str(port),
            "APP_PROVIDER": "openai-compatible",
            "APP_PROVIDER_BASE_URL": f"{model_server.url}/v1",
            "APP_REGISTRY_RELOAD_SECONDS": "0.2",
            "APP_ADMIN_TOKEN": ADMIN_TOKEN,
            "APP_ENV": "test",
            "APP_VERSION": "test-sha",
            # Each app its own SQLite file unless the test names a database.
            "APP_DATABASE_URL": f"sqlite:///{workdir / f'service-{port}.db'}",
            **{f"APP_{k.upper()}": str(v) for k, v in settings.items()},
        }
        if "APP_REGISTRY_DIR" not in env:
            registry = workdir / f"registry-{port}"
            shutil.copytree(REPO / "registry", registry)
            env["APP_REGISTRY_DIR"] = str(registry)
        proc = python_module(f"app-{port}", "app", port=port, env=env, log_dir=workdir, cwd=REPO)
        started.append(proc.start())
        if wait:
            proc.wait_http(wait)
        return proc

    return start
