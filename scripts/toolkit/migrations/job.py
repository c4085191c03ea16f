"""The migration Job on a cluster: replaced, run with the build's image, and waited for.

A Job's pod template is immutable, so each run deletes the last Job (the `kubectl delete
--ignore-not-found` step), waits until it is gone, and creates it again from the manifest
(k8s/base/migrate-job.yaml) with the build's image `<repository>:<sha>` and `--phase expand`
or `--phase contract`. The settings it reads come from the live stable Deployment's `envFrom`:
the cluster names the settings ConfigMap with kustomize's hash suffix, and the Job must reach
the database the pods use. The wait ends when the Job is Complete; Failed or out of time stops
the deploy with one sentence naming the Job and how to read its logs, before any traffic moves.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.files import REPO_ROOT
from scripts.toolkit.cli import EXIT_FAILED, ToolkitError
from scripts.toolkit.traffic.kube.client import FIELD_MANAGER, Json, Kube, NotFound
from scripts.toolkit.traffic.kube.workloads import SHA, annotation, now_text, pod_reason

JOB_MANIFEST = REPO_ROOT / "k8s" / "base" / "migrate-job.yaml"
BATCH = "batch/v1"
PHASE = "phase"


@dataclass(frozen=True)
class JobRun:
    """A finished migration Job: its name, image, phase and how long it took."""

    name: str
    image: str
    phase: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.name, "image": self.image, "phase": self.phase, "seconds": self.seconds}


def read_manifest(path: Path) -> Json:
    """The Job of `path` (a file with one Job, or a rendered overlay holding one)."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise ToolkitError(f"cannot read the migration Job from {path} ({exc}); fix it.") from exc
    jobs = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Job"]
    if len(jobs) != 1:
        raise ToolkitError(
            f"{path} holds {len(jobs)} Jobs; --job-manifest needs a file with exactly one "
            "(k8s/base/migrate-job.yaml)."
        )
    return jobs[0]


def job_body(
    manifest: Json, *, image: str, phase: str, sha: str, env_from: list[Json] | None
) -> Json:
    """The Job to create: the manifest with `image` on its first container, `--phase phase`
    in its command, the service's `envFrom`, and the SHA and phase as annotations."""
    job = copy.deepcopy(manifest)
    name = str((job.get("metadata") or {}).get("name") or "")
    containers = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    if not name or not containers:
        raise ToolkitError("the migration Job's manifest needs metadata.name and a container.")
    container = containers[0]
    command = [str(part) for part in container.get("command") or []]
    if "--phase" not in command or command.index("--phase") + 1 >= len(command):
        raise ToolkitError(
            f"the command of Job {name} has no `--phase <phase>`; it must run "
            "`python -m app.db upgrade --phase expand` (k8s/base/migrate-job.yaml)."
        )
    command[command.index("--phase") + 1] = phase
    container["command"] = command
    container["image"] = image
    if env_from is not None:
        container["envFrom"] = env_from
    metadata = job["metadata"]
    metadata.pop("namespace", None)
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        annotation(SHA): sha,
        annotation(PHASE): phase,
        annotation("started-at"): now_text(),
    }
    return job


def service_env_from(deployment: Json) -> list[Json] | None:
    """The `envFrom` of the service's main container, as the cluster runs it."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    found = containers[0].get("envFrom")
    return list(found) if found is not None else None


def replace_job(kube: Kube, body: Json) -> None:
    """Delete the Job of the same name (missing is fine), wait until it is gone, create `body`."""
    name = body["metadata"]["name"]
    path = kube.path(BATCH, "jobs", name)
    if kube.dry_run:
        print(f"dry-run: DELETE {path}?propagationPolicy=Background", file=kube.echo, flush=True)
        print(f"dry-run: POST {kube.path(BATCH, 'jobs')}", file=kube.echo, flush=True)
        return
    with contextlib.suppress(NotFound):  # its pods go with it, as `kubectl delete job` does
        kube.request("DELETE", path, query={"propagationPolicy": "Background"})
    deadline = kube.clock() + kube.api_timeout
    while True:
        try:
            kube.get(path)
        except NotFound:
            break
        if kube.clock() >= deadline:
            raise ToolkitError(
                f"the previous Job {name} is still being deleted after {kube.api_timeout:g} s; "
                f"run `kubectl -n {kube.namespace} delete job {name}` and deploy again.",
                exit_code=EXIT_FAILED,
            )
        kube.sleep(0.5)
    kube.request(
        "POST",
        kube.path(BATCH, "jobs"),
        query={"fieldManager": FIELD_MANAGER},
        body=body,
        content_type="application/json",
    )


def finished(job: Json) -> str | None:
    """`Complete` or `Failed` once the Job is done (its condition), else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def failure_reason(job: Json) -> str:
    """Why the Job failed, from its Failed condition."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed":
            reason, message = condition.get("reason") or "", condition.get("message") or ""
            return f"{reason}: {message}".strip(": ") or "failed"
    return "failed"


def pods_of(kube: Kube, job: Json) -> str:
    """What the Job's pods report (the first not-ready ones), or an empty string."""
    uid = job["metadata"].get("uid")
    if not uid:
        return ""
    query = {"labelSelector": f"batch.kubernetes.io/controller-uid={uid}"}
    pods = kube.get(kube.path("v1", "pods"), query=query).get("items") or []
    reasons = [r for r in (pod_reason(p) for p in pods) if r]
    return "; ".join(reasons[:2])


def wait_job(kube: Kube, name: str, *, timeout: float) -> Json:
    """Wait until Job `name` is Complete; Failed or `timeout` seconds raise one sentence saying
    which Job and where its logs are (gate failed: no traffic moves)."""
    logs = f"`kubectl -n {kube.namespace} logs job/{name}`"
    deadline = kube.clock() + timeout
    while True:
        job = kube.get(kube.path(BATCH, "jobs", name))
        state = finished(job)
        if state == "Complete":
            return job
        if state == "Failed":
            pods = pods_of(kube, job)
            raise ToolkitError(
                f"the migration Job {name} failed ({failure_reason(job)}"
                + (f"; {pods}" if pods else "")
                + f"); no traffic moved: read its logs with {logs}, fix the revision and "
                "deploy again.",
                exit_code=EXIT_FAILED,
            )
        if kube.clock() >= deadline:
            raise ToolkitError(
                f"the migration Job {name} did not complete within {timeout:g} s; no traffic "
                f"moved: read its logs with {logs} (it may still run: the next deploy replaces "
                "it).",
                exit_code=EXIT_FAILED,
            )
        kube.sleep(1.0)


def run_migration_job(
    kube: Kube,
    manifest: Json,
    *,
    image: str,
    phase: str,
    sha: str,
    env_from: list[Json] | None,
    timeout: float,
) -> JobRun:
    """Replace the migration Job with one for `image` and `phase`, and wait for it."""
    body = job_body(manifest, image=image, phase=phase, sha=sha, env_from=env_from)
    name = body["metadata"]["name"]
    started = time.monotonic()
    replace_job(kube, body)
    if not kube.dry_run:
        wait_job(kube, name, timeout=timeout)
    return JobRun(name, image, phase, round(time.monotonic() - started, 1))
