"""The steps of a job as GitHub runs them: `if:` with the step's status, env and `${{ }}`,
`run:` through GitHub's shell with its files and workflow commands (`::notice::`, ...),
third-party actions through their declared stand-ins, local composite actions expanded, and
the cancel sequence for a running step. `Run` (runner.py) adds the jobs around them."""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.workflow.expressions import Evaluator, Status
from scripts.toolkit.workflow.model import (
    Annotation,
    Called,
    JobState,
    Settings,
    StepResult,
    read_commands_file,
    text_of,
)
from scripts.toolkit.workflow.process import run_script
from scripts.toolkit.workflow.standins import action_name, input_variables

COMMAND = re.compile(r"^::(notice|warning|error)(?: ([^:]*))?::(.*)$")
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "TMPDIR", "TERM", "TZ")


class StepRunner:
    """What every step of a run shares: settings, the evaluator, the cancel flag, annotations,
    the run's id and its artifact folder."""

    def __init__(self, settings: Settings, evaluator: Evaluator) -> None:
        self.settings = settings
        self.evaluator = evaluator
        self.cancelled = threading.Event()
        self.annotations: list[Annotation] = []
        self.run_id = str(int(time.time()))
        self.artifacts = Path(tempfile.mkdtemp(prefix="workflow-artifacts-"))

    def run_step(
        self,
        called: Called,
        job: JobState,
        index: int,
        step: dict[str, Any],
        context: dict[str, Any],
        masks: list[str],
        summaries: list[str],
        *,
        inputs: dict[str, Any],
    ) -> StepResult:
        steps_context: dict[str, Any] = context["steps"]
        failed = any(s["conclusion"] == "failure" for s in steps_context.values())
        # A job started after the run was cancelled (if: always()) runs its steps as usual; one
        # running when it was cancelled sees cancelled() in the steps it has left.
        cancelled = job.cancelled or (self.cancelled.is_set() and not job.started_cancelled)
        status = Status(success=not failed and not cancelled, failure=failed, cancelled=cancelled)
        step_context = {**context, "env": job.env, "inputs": inputs}
        name = str(step.get("name") or step.get("uses") or str(step.get("run", "")).split("\n")[0])
        step_id = str(step.get("id") or f"__step{index}")
        if not self.evaluator.condition(step_context, status, str(step.get("if", ""))):
            steps_context[step_id] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            return StepResult(name, "skipped", "skipped")
        self.settings.log(f"-- {job.path}: {name}")
        step_env = self.evaluator.text(step_context, status, dict(step.get("env") or {}))
        step_context = {**step_context, "env": {**job.env, **step_env}}
        started = time.monotonic()
        outputs: dict[str, str] = {}
        if "run" in step:
            shell = step.get("shell", "bash")
            if shell not in ("bash", "bash -e {0}"):
                raise ToolkitError(
                    f"{job.path}: step {name!r} uses shell {shell!r}; only bash runs locally."
                )
            script = str(self.evaluator.text(step_context, status, str(step["run"])))
            code, outputs = self.shell(
                job, index, script, {**job.env, **step_env}, masks, summaries, step
            )
        else:
            code, outputs = self.action(
                called, job, index, step, step_context, status, masks, summaries
            )
        outcome = "success" if code == 0 else "failure"
        conclusion = "success" if step.get("continue-on-error") is True else outcome
        steps_context[step_id] = {"outputs": outputs, "outcome": outcome, "conclusion": conclusion}
        if outcome == "failure":
            self.settings.log(f"   {job.path}: {name!r} failed (exit {code})")
        return StepResult(name, outcome, conclusion, time.monotonic() - started)

    def action(
        self,
        called: Called,
        job: JobState,
        index: int,
        step: dict[str, Any],
        context: dict[str, Any],
        status: Status,
        masks: list[str],
        summaries: list[str],
    ) -> tuple[int, dict[str, str]]:
        uses = str(step["uses"])
        given = self.evaluator.text(context, status, dict(step.get("with") or {}))
        env = {**job.env, **context["env"]}
        if uses.startswith("./"):
            return self.composite(called, job, index, uses, given, context, masks, summaries)
        stand_in = self.settings.stand_ins.get(action_name(uses))
        if stand_in is None:
            self.annotate(
                "error",
                job.path,
                "",
                f"{uses} has no declared local stand-in (.github/local-stand-ins.yaml)",
            )
            return 1, {}
        if stand_in.refuse:
            self.annotate("error", job.path, action_name(uses), stand_in.refuse)
            return 1, {}
        if stand_in.notice:
            self.annotate("notice", job.path, f"stand-in for {action_name(uses)}", stand_in.notice)
        code = 0
        if stand_in.run:
            code, _ = self.shell(
                job, index, stand_in.run, {**env, **input_variables(given)}, masks, summaries, step
            )
        return code, dict(stand_in.outputs)

    def composite(
        self,
        called: Called,
        job: JobState,
        index: int,
        uses: str,
        given: dict[str, Any],
        context: dict[str, Any],
        masks: list[str],
        summaries: list[str],
    ) -> tuple[int, dict[str, str]]:
        folder = self.settings.workspace / uses
        data = yaml.safe_load((folder / "action.yml").read_text(encoding="utf-8"))
        runs = data.get("runs") or {}
        if runs.get("using") != "composite":
            raise ToolkitError(f"{uses}: only composite local actions run locally.")
        inputs = {
            name: given.get(name, (spec or {}).get("default", ""))
            for name, spec in (data.get("inputs") or {}).items()
        }
        inner_context = {**context, "steps": {}}
        for inner_index, inner in enumerate(runs.get("steps") or []):
            result = self.run_step(
                called, job, index * 100 + inner_index, inner, inner_context, masks, summaries,
                inputs=inputs,
            )  # fmt: skip
            if result.conclusion == "failure":
                return 1, {}
        declared = {k: (v or {}).get("value", "") for k, v in (data.get("outputs") or {}).items()}
        status = Status(success=True, failure=False, cancelled=self.cancelled.is_set())
        outputs = self.evaluator.text({**inner_context, "inputs": inputs}, status, declared)
        return 0, {k: text_of(v) for k, v in outputs.items()}

    def shell(
        self,
        job: JobState,
        index: int,
        script: str,
        env: dict[str, str],
        masks: list[str],
        summaries: list[str],
        step: dict[str, Any],
    ) -> tuple[int, dict[str, str]]:
        files = {name: job.temp / f"{name.lower()}-{index}" for name in
                 ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")}  # fmt: skip
        for file in files.values():
            file.write_text("", encoding="utf-8")
        script_file = job.temp / f"step-{index}.sh"
        script_file.write_text(script, encoding="utf-8")
        base = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        base["PATH"] = os.pathsep.join([*job.path_entries, base.get("PATH", "")])
        process_env = {
            **base,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.settings.workspace),
            "GITHUB_SHA": self.settings.sha,
            "GITHUB_REF": self.settings.ref,
            "GITHUB_EVENT_NAME": self.settings.event,
            "GITHUB_REPOSITORY": f"local/{self.settings.workspace.name}",
            "GITHUB_RUN_ID": self.run_id,
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_JOB": job.path.rsplit("/", 1)[-1],
            "RUNNER_TEMP": str(job.temp),
            "RUNNER_OS": "Linux",
            "LOCAL_ARTIFACTS_DIR": str(self.artifacts),
            **{k: str(v) for k, v in files.items()},
            **{k: text_of(v) for k, v in env.items()},
        }
        step_deadline = None
        if "timeout-minutes" in step:
            step_deadline = time.monotonic() + float(step["timeout-minutes"]) * 60

        def stop() -> bool:
            now = time.monotonic()
            if job.cancel_deadline is not None and now >= job.cancel_deadline:
                if not self.cancelled.is_set():
                    self.settings.log(
                        f"== cancelling the run ({job.path} ran its --cancel-after time)"
                    )
                self.cancelled.set()
            if now >= job.deadline:
                job.timed_out = True
            if step_deadline is not None and now >= step_deadline:
                return True
            return (self.cancelled.is_set() and not survives()) or job.timed_out

        def survives() -> bool:
            # GitHub re-evaluates a running job's `if:` when the run is cancelled: a job whose
            # condition still holds (always()) is not cancelled.
            if job.survives is None:
                status = Status(success=False, failure=False, cancelled=True)
                job.survives = job.started_cancelled or self.evaluator.condition(
                    job.context, status, job.condition
                )
            return job.survives

        def on_line(line: str) -> None:
            for secret in masks:
                line = line.replace(secret, "***")
            match = COMMAND.match(line)
            if match:
                level, props, message = match.groups()
                title = dict(p.split("=", 1) for p in (props or "").split(",") if "=" in p).get(
                    "title", ""
                )
                self.annotate(level, job.path, title, message)
                return
            self.settings.log(f"   {line}")

        finished = run_script(
            script_file, env=process_env, cwd=self.working_directory(job, step), stop=stop,
            on_line=on_line, groups=job.groups,
        )  # fmt: skip
        if finished.interrupted and (self.cancelled.is_set() or job.timed_out):
            job.cancelled = self.cancelled.is_set() and not job.timed_out
        job.env.update(read_commands_file(files["GITHUB_ENV"]))
        added = files["GITHUB_PATH"].read_text(encoding="utf-8").split()
        job.path_entries[:0] = list(reversed(added))
        summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
        if summary.strip():
            summaries.append(summary)
        return finished.exit_code, read_commands_file(files["GITHUB_OUTPUT"])

    def working_directory(self, job: JobState, step: dict[str, Any]) -> Path:
        """The step's working-directory (relative to the workspace), evaluated."""
        given = step.get("working-directory")
        if not given:
            return self.settings.workspace
        status = Status(success=True, failure=False, cancelled=False)
        folder = self.evaluator.text({**job.context, "env": job.env}, status, str(given))
        return self.settings.workspace / str(folder)

    def annotate(self, level: str, job: str, title: str, message: str) -> None:
        self.annotations.append(Annotation(level, job, title, message))
        shown = f"{title}: {message}" if title else message
        self.settings.log(f"   {level}: {shown}")
