"""A workflow run on this machine: jobs in `needs` order with GitHub's status rules (a job
after a skipped ancestor is skipped unless its `if:` says otherwise; a cancelled run still
runs the jobs whose `if:` holds), environments' variables and secrets, job outputs, and
reusable workflows expanded with their typed inputs and secrets. The steps: steps.py.

What it does not do (refused with a sentence, never ignored): a `matrix`, `container`,
`services` or `defaults`, a shell other than bash, an action without a declared stand-in.
Jobs run one at a time, in `needs` order (the workflow's order between jobs ready together).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.workflow.expressions import Evaluator, Status
from scripts.toolkit.workflow.model import (
    Called,
    JobResult,
    JobState,
    Settings,
    StepResult,
    job_order,
    load_workflow,
    needs_of,
    typed_inputs,
)
from scripts.toolkit.workflow.process import kill_groups
from scripts.toolkit.workflow.steps import StepRunner


class Run(StepRunner):
    """One workflow run; `run()` returns every job's result by path."""

    def __init__(self, settings: Settings, evaluator: Evaluator) -> None:
        super().__init__(settings, evaluator)
        self.jobs: dict[str, JobResult] = {}

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

    def summaries(self) -> Iterator[tuple[str, str]]:
        for path, job in self.jobs.items():
            if job.summary:
                yield path, job.summary
