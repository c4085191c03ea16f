"""A workflow run on this machine: jobs in `needs` order, steps with GitHub's shell, contexts,
status functions, files and results; reusable workflows and local composite actions expanded;
third-party actions replaced by their declared stand-ins (standins.py).

What it does not do (refused with a sentence, never ignored): a `matrix`, a shell other than
bash, an action without a declared stand-in. Jobs run one at a time, in `needs` order (the
workflow's order between jobs that are ready together).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.workflow.expressions import Evaluator, Status
from scripts.toolkit.workflow.model import (
    Annotation,
    Called,
    JobResult,
    JobState,
    Settings,
    StepResult,
    job_order,
    load_workflow,
    needs_of,
    read_commands_file,
    text_of,
    typed_inputs,
)
from scripts.toolkit.workflow.process import kill_groups, run_script
from scripts.toolkit.workflow.standins import action_name, input_variables

COMMAND = re.compile(r"^::(notice|warning|error)(?: ([^:]*))?::(.*)$")
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "TMPDIR", "TERM", "TZ")


class Run:
    """One workflow run; `run()` returns every job's result by path."""

    def __init__(self, settings: Settings, evaluator: Evaluator) -> None:
        self.settings = settings
        self.evaluator = evaluator
        self.cancelled = threading.Event()
        self.annotations: list[Annotation] = []
        self.jobs: dict[str, JobResult] = {}
        self.run_id = str(int(time.time()))
        self.artifacts = Path(tempfile.mkdtemp(prefix="workflow-artifacts-"))

    # -- contexts --------------------------------------------------------------------------

    def github(self, called: Called, job: str = "") -> dict[str, Any]:
        s = self.settings
        event: dict[str, Any] = {"ref": s.ref, "before": s.before, "after": s.sha}
        if s.event == "workflow_dispatch":
            event = {"ref": s.ref, "inputs": s.inputs}
        return {
            "event_name": s.event,
            "event": event,
            "sha": s.sha,
            "ref": s.ref,
            "ref_name": s.ref.rsplit("/", 1)[-1],
            "repository": f"local/{s.workspace.name}",
            "repository_owner": "local",
            "run_id": self.run_id,
            "run_number": "1",
            "run_attempt": "1",
            "workspace": str(s.workspace),
            "actor": os.environ.get("USER", "local"),
            "server_url": "https://github.com",
            "workflow": called.data.get("name", called.path.name),
            "job": job,
        }

    def run(self, path: Path) -> dict[str, JobResult]:
        """Every job of the workflow at `path`; the run's artifacts are removed at its end."""
        try:
            return self._run(path)
        finally:
            shutil.rmtree(self.artifacts, ignore_errors=True)

    def _run(self, path: Path) -> dict[str, JobResult]:
        data = load_workflow(path)
        triggers = data["on"] if isinstance(data["on"], dict) else {}
        inputs = dict(self.settings.inputs)
        if self.settings.event == "workflow_dispatch":
            inputs = typed_inputs(
                (triggers.get("workflow_dispatch") or {}).get("inputs") or {}, inputs, path
            )
        called = Called(path, data, inputs, dict(self.settings.secrets))
        self.run_jobs(called)
        return self.jobs

    def run_jobs(self, called: Called) -> dict[str, JobResult]:
        jobs: dict[str, Any] = called.data["jobs"]
        results: dict[str, JobResult] = {}
        for job_id in job_order(jobs):
            started = time.monotonic()
            result = self.run_job(called, job_id, jobs[job_id], results)
            result.seconds = time.monotonic() - started
            results[job_id] = result
            self.jobs[result.path] = result
            self.settings.log(f"== {result.path}: {result.result} ({result.seconds:.0f} s)")
        return results

    def ancestors(self, jobs: dict[str, Any], job_id: str) -> set[str]:
        seen: set[str] = set()
        stack = needs_of(jobs[job_id])
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(needs_of(jobs[name]))
        return seen

    # -- jobs ------------------------------------------------------------------------------

    def run_job(
        self, called: Called, job_id: str, job: dict[str, Any], done: dict[str, JobResult]
    ) -> JobResult:
        path = called.prefix + job_id
        unsupported = sorted({"strategy", "container", "services", "defaults"} & set(job))
        if unsupported:
            raise ToolkitError(
                f"job {path}: `{unsupported[0]}` is not supported by the local runner; "
                "the workflows here do without it."
            )
        earlier = [done[a].result for a in self.ancestors(called.data["jobs"], job_id)]
        status = Status(
            success=all(r == "success" for r in earlier) and not self.cancelled.is_set(),
            failure="failure" in earlier,
            cancelled=self.cancelled.is_set(),
        )
        needs = {n: {"result": done[n].result, "outputs": done[n].outputs} for n in needs_of(job)}
        context = {
            "github": self.github(called, job_id),
            "needs": needs,
            "vars": self.settings.vars,
            "inputs": called.inputs,
        }
        if path in self.settings.assume_success:
            self.settings.log(f"== {path}: not run (--assume-success), counted as success")
            return JobResult(path, "success")
        if not self.evaluator.condition(context, status, str(job.get("if", ""))):
            result = "cancelled" if self.cancelled.is_set() else "skipped"
            return JobResult(path, result)
        self.settings.log(f"== {path}: started")
        if "uses" in job:
            return self.call_workflow(called, path, job, context, status)
        return self.run_steps(called, path, job_id, job, context, needs)

    def call_workflow(
        self,
        caller: Called,
        path: str,
        job: dict[str, Any],
        context: dict[str, Any],
        status: Status,
    ) -> JobResult:
        uses = str(job["uses"])
        if not uses.startswith("./"):
            raise ToolkitError(f"job {path}: only local reusable workflows (./...) run locally.")
        file = self.settings.workspace / uses
        data = load_workflow(file)
        call = (data["on"] or {}).get("workflow_call") if isinstance(data["on"], dict) else None
        if call is None:
            raise ToolkitError(f"{uses} has no `on: workflow_call`: it cannot be called.")
        given = self.evaluator.text(context, status, dict(job.get("with") or {}))
        inputs = typed_inputs(call.get("inputs") or {}, given, file)
        context = {**context, "secrets": caller.secrets}
        secrets_spec = job.get("secrets") or {}
        if secrets_spec == "inherit":
            secrets = dict(caller.secrets)
        else:
            secrets = {
                k: str(v)
                for k, v in self.evaluator.text(context, status, dict(secrets_spec)).items()
            }
        declared = call.get("secrets") or {}
        for name, spec in declared.items():
            if (spec or {}).get("required") and not secrets.get(name):
                raise ToolkitError(f"job {path}: {uses} requires the secret {name}.")
        undeclared = set(secrets_spec if isinstance(secrets_spec, dict) else {}) - set(declared)
        if undeclared:
            raise ToolkitError(f"job {path}: {uses} declares no secret {sorted(undeclared)}.")
        inner = self.run_jobs(Called(file, data, inputs, secrets, prefix=path + "/"))
        results = [r.result for r in inner.values()]
        result = (
            "failure" if "failure" in results
            else "cancelled" if "cancelled" in results
            else "success"
        )  # fmt: skip
        jobs_context = {k: {"result": r.result, "outputs": r.outputs} for k, r in inner.items()}
        outputs_spec = {
            k: (v or {}).get("value", "") for k, v in (call.get("outputs") or {}).items()
        }
        outputs = self.evaluator.text(
            {**context, "jobs": jobs_context, "inputs": inputs}, status, outputs_spec
        )
        return JobResult(path, result, outputs=outputs)

    def run_steps(
        self,
        called: Called,
        path: str,
        job_id: str,
        job: dict[str, Any],
        context: dict[str, Any],
        needs: dict[str, Any],
    ) -> JobResult:
        settings = self.settings
        running = Status(success=True, failure=False, cancelled=self.cancelled.is_set())
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        environment = self.evaluator.text(context, running, environment) if environment else ""
        scoped = settings.environments.get(str(environment), {}) if environment else {}
        job_vars = {**settings.vars, **scoped.get("vars", {})}
        job_secrets = {**called.secrets, **scoped.get("secrets", {})}
        context = {
            **context,
            "vars": job_vars,
            "secrets": job_secrets,
            "strategy": {},
            "matrix": {},
            "runner": {"os": "Linux", "temp": "", "name": "local"},
            "job": {"status": "success"},
            "steps": {},
        }
        workflow_env = self.evaluator.text(
            {**context, "env": {}}, running, dict(called.data.get("env") or {})
        )
        env = {
            **workflow_env,
            **self.evaluator.text(
                {**context, "env": workflow_env}, running, dict(job.get("env") or {})
            ),
        }
        temp = Path(tempfile.mkdtemp(prefix=f"runner-{job_id}-"))
        context["runner"]["temp"] = str(temp)
        timeout = float(job.get("timeout-minutes", 360)) * 60
        deadline = time.monotonic() + timeout
        cancel_at = settings.cancel_after.get(path)
        cancel_deadline = time.monotonic() + cancel_at if cancel_at is not None else None
        job_state = JobState(path, env, [], temp, deadline, cancel_deadline)
        job_state.started_cancelled = self.cancelled.is_set()
        job_state.condition = str(job.get("if", ""))
        job_state.context = context
        masks = [v for v in job_secrets.values() if v]
        steps: list[StepResult] = []
        summaries: list[str] = []
        for index, step in enumerate(job.get("steps") or []):
            result = self.run_step(
                called, job_state, index, step, context, masks, summaries, inputs=called.inputs
            )
            steps.append(result)
        kill_groups(job_state.groups)
        shutil.rmtree(temp, ignore_errors=True)
        if job_state.timed_out:
            result_word = "failure"
            self.annotate(
                "error", path, "", f"the job ran past its timeout-minutes ({timeout / 60:g})"
            )
        elif job_state.cancelled:
            result_word = "cancelled"
        elif any(s.conclusion == "failure" for s in steps):
            result_word = "failure"
        else:
            result_word = "success"
        outputs_spec = dict(job.get("outputs") or {})
        outputs = self.evaluator.text({**context, "env": env}, running, outputs_spec)
        summary = "\n".join(summaries)
        del needs
        return JobResult(path, result_word, outputs=outputs, steps=steps, summary=summary)

    # -- steps -----------------------------------------------------------------------------

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

    def summaries(self) -> Iterator[tuple[str, str]]:
        for path, job in self.jobs.items():
            if job.summary:
                yield path, job.summary
