"""Every command of README.md and DEPLOYING.md, run for real in the order a reader runs them.

The commands are the lines of the two files' fenced `bash` blocks (backslash continuations
joined, comments dropped); commands in prose are references, not steps. Each runs through bash
from the repository's root with `.venv/bin` first on PATH, against a real local platform in a
scratch folder on a free port. The docs cannot drift from the code: a command that changes or
appears is run (or the test fails until it is listed in `NOT_RUN` with the reason), and every
listing here must still name a documented command.

What the test changes, and why the docs need not say it:
- the platform's port and folder (`:8000`, `.local/platform`) become the scratch ones, through
  the commands' text and `ROLLOUT_PORT` / `ROLLOUT_PLATFORM_DIR`;
- `ROLLOUT_POLICY` is the shipped policy on a fast clock (steps 20/50/100 a few seconds each,
  60 samples), so `monitor_canary --act` decides in seconds instead of minutes;
- `ROLLOUT_LIMIT` runs the quality gate on the first cases only, `ROLLOUT_PROMETHEUS=off`,
  and `ROLLOUT_STATE_FILE` keeps the monitor's progress out of the checkout's `.local/`;
- the load runs for `LOAD_SECONDS` instead of `-t 20m`, and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contract.registry.loader import load_registry
from scripts.toolkit.processes import free_port
from tests.support.platform import fast_policy
from tests.support.service import REPO

# The whole walk through both documents takes about 2 minutes on a quiet machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DOCS = ("README.md", "DEPLOYING.md")
VENV_BIN = REPO / ".venv" / "bin"
# Long enough for every monitor of the walk on a loaded machine (the load is stopped at the end
# anyway): with 170 s, a CI run under load saw the prompt monitor outlive its traffic and wait.
LOAD_SECONDS = 540
HEADLINE = "How long do I have to ask for a refund?"

# Documented commands the test does not run, with the reason.
NOT_RUN = {
    "./dev demo": "about 70 s on its own platform; tests/scripts/test_demo.py runs it",
    "./dev test": "the whole suite, this test included",
    "./dev serve": "a server that runs until stopped; the test's local platform (the same "
    "service behind the router, started before) answers the README's curl instead",
    "git clone <your fork> && cd <your fork>": "needs the reader's fork; the test runs in the "
    "checkout",
    "./dev setup": "installs Debian packages as root and rebuilds .venv/; the test runs in the "
    ".venv/ it made",
}
# Started in the background ("in a second terminal") and left running for the later steps.
BACKGROUND = {
    "LOAD_RATE=2 LOAD_FEEDBACK=0.3 .venv/bin/locust -f scripts/toolkit/locustfile.py --headless "
    "-u 20 -r 20 -t 20m -H http://127.0.0.1:8000",
}
# Exit codes other than 0 that a command may end with, as its comment in the docs says.
EXIT_CODES = {
    ".venv/bin/python -m scripts.monitor_canary --once": {0, 3},
}


@dataclass
class Run:
    """The docs' commands run so far, with the shell variables they set."""

    port: int
    state_dir: Path
    env: dict[str, str]
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def text(self, command: str) -> str:
        """The command as run here: the scratch platform's port and folder."""
        command = command.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        command = command.replace("localhost:8000", f"localhost:{self.port}")
        command = command.replace(".local/platform", str(self.state_dir))
        return re.sub(r" -t \d+m ", f" -t {LOAD_SECONDS}s ", command)

    def shell(self, script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", f"set -eo pipefail\n{script}"],  # noqa: S607  # bash from PATH
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def documented_commands(name: str) -> list[str]:
    """The commands of a file's fenced bash blocks, in order."""
    commands: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", (REPO / name).read_text(), re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s{2,}#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def readme_example() -> str:
    """The README's example answer, as shown (wrapped, ids elided)."""
    block = re.search(r"^```json\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)
    assert block, "README.md shows an example answer"
    return block.group(1)


def readme_json_keys() -> set[str]:
    """Every key of the README's example answer."""
    return set(re.findall(r'"([a-z_]+)":', readme_example()))


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item)


def check_answer(run: Run, result: subprocess.CompletedProcess[str]) -> None:
    body = json.loads(result.stdout)
    missing = readme_json_keys() - set(keys(body))
    assert not missing, f"the README's example shows fields the service does not send: {missing}"
    assert not body["quality"]["refused"], body["answer"]
    assert "refund-policy" in [c["document_id"] for c in body["citations"]], body
    shown = re.search(r'"answer": "(.*?)",\n', readme_example(), re.S)
    assert shown, "the README's example shows the answer"
    assert " ".join(shown.group(1).split()) == body["answer"], "the README shows another answer"


def registry_versions(run: Run) -> dict[str, str]:
    prompts = load_registry(run.state_dir / "registry").prompts["rag_answer"].versions
    return {version: prompt.status for version, prompt in prompts.items()}


def check_registered(run: Run, result: subprocess.CompletedProcess[str]) -> None:
    assert registry_versions(run)["v2"] == "retired"
    assert not (REPO / "registry" / "prompts" / "rag_answer" / "v2.yaml").exists()


def check_promoted(run: Run, result: subprocess.CompletedProcess[str]) -> None:
    assert "promoted" in result.stderr, result.stderr


def check_prompt_promoted(run: Run, result: subprocess.CompletedProcess[str]) -> None:
    check_promoted(run, result)
    assert registry_versions(run)["v2"] == "production"


def check_reverted(run: Run, result: subprocess.CompletedProcess[str]) -> None:
    assert registry_versions(run) == {"v1": "production", "v2": "retired"}


# What a command's output must show, beyond its exit code.
CHECKS: dict[str, Callable[[Run, subprocess.CompletedProcess[str]], None]] = {
    f"curl -s localhost:8000/v1/answer -H 'content-type: application/json' -d "
    f'\'{{"question": "{HEADLINE}", "user_id": "u-42"}}\'': check_answer,
    ".venv/bin/python -m scripts.promote --target prompt --add "
    "examples/prompts/rag_answer/v2.yaml": check_registered,
    ".venv/bin/python -m scripts.monitor_canary --act": check_promoted,
    ".venv/bin/python -m scripts.monitor_canary --target prompt --act": check_prompt_promoted,
    ".venv/bin/python -m scripts.promote --target prompt --candidate v1 --to full": check_reverted,
}
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(\$\(.*\))$")  # NAME=$(...): kept for later


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """A scratch platform folder and port, a fast policy; everything stopped at the end."""
    policy_path = fast_policy(tmp_path / "policy.yaml", max_step_seconds=90, max_missing_seconds=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    port, state_dir = free_port(), tmp_path / "platform"
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ROLLOUT_PLATFORM_DIR=str(state_dir),
        ROLLOUT_PORT=str(port),
        ROLLOUT_PROMETHEUS="off",
        ROLLOUT_POLICY=str(policy_path),
        ROLLOUT_LIMIT="30",
        ROLLOUT_STATE_FILE=str(tmp_path / "rollout.json"),
    )
    env.pop("GITHUB_STEP_SUMMARY", None)
    context = Run(port=port, state_dir=state_dir, env=env)
    try:
        yield context
    finally:
        for process in context.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
        context.shell(".venv/bin/python -m scripts.local_platform down", timeout=120)


def test_every_listed_command_is_still_documented() -> None:
    documented = {c for name in DOCS for c in documented_commands(name)}
    listed = {*NOT_RUN, *BACKGROUND, *EXIT_CODES, *CHECKS}
    assert listed <= documented, f"listed here but no longer in the docs: {listed - documented}"


def test_the_documented_commands_run_in_order(run: Run) -> None:
    # `./dev serve` stands for "a service on :8000": the platform's router is one.
    started = run.shell(".venv/bin/python -m scripts.local_platform up", timeout=120)
    assert started.returncode == 0, started.stderr
    for name in DOCS:
        for command in documented_commands(name):
            if command in NOT_RUN:
                continue
            text = run.text(command)
            if command in BACKGROUND:
                with (run.state_dir / "docs-load.log").open("wb") as log:
                    run.background.append(
                        subprocess.Popen(
                            ["bash", "-c", text],  # noqa: S607  # bash from PATH
                            cwd=REPO,
                            env=run.env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
                continue
            if match := ASSIGNMENT.match(text):
                name_ = match.group(1)
                result = run.shell(f'{text}\nprintf %s "${name_}"')
                assert result.returncode == 0 and result.stdout, (command, result.stderr)
                run.env[name_] = result.stdout
                continue
            # A monitor waits for its samples, which a loaded machine serves more slowly.
            result = run.shell(text, timeout=360 if "monitor_canary --" in text else 180)
            expected = EXIT_CODES.get(command, {0})
            assert result.returncode in expected, (
                f"{name}: `{command}` exited {result.returncode}:\n{result.stderr[-3000:]}"
            )
            if check := CHECKS.get(command):
                check(run, result)
