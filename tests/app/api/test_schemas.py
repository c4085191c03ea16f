"""Schemathesis against a running service: every response agrees with `/openapi.json`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract.http import ADMIN_TOKEN_HEADER
from tests.support.service import ADMIN_TOKEN, StartApp

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_failure(start_app: StartApp) -> None:
    proc = start_app(registry_reload_seconds="0")
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{proc.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "20",
        "--seed",
        "1",
        "--header",
        f"{ADMIN_TOKEN_HEADER}: {ADMIN_TOKEN}",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout, result.stdout[-4000:]
