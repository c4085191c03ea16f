"""DEPLOYING.md's Kubernetes section: every command that can run here runs, against the API
emulator seeded with the staging overlay (renders, `--help`, `--dry-run`); the others need a
real cluster, a container engine or the reader's secrets, and are listed with the reason.

The section's commands are the lines of its fenced `sh` blocks (the walk through README and
DEPLOYING, tests/docs/test_documented_commands.py, runs the `bash` blocks on the local platform).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from contract.files import REPO_ROOT
from tests.k8s.tools import kubectl
from tests.support.kube import KubeCluster
from tests.support.kube_objects import NAMESPACE, seed, shas

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TITLE = "## 10. Kubernetes: a kind or minikube cluster with a Gateway API implementation"
NEEDS_A_CLUSTER = "needs a real cluster (kind or minikube), which CI does not have"
NOT_RUN = {
    "kind create cluster --name ai-rollout": NEEDS_A_CLUSTER,
    "kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/"
    "download/v1.2.1/experimental-install.yaml": NEEDS_A_CLUSTER + ", and the network",
    "helm install eg oci://docker.io/envoyproxy/gateway-helm --version v1.2.1 -n "
    "envoy-gateway-system --create-namespace": NEEDS_A_CLUSTER + ", and the network",
    "kubectl apply -f gateway.yaml": NEEDS_A_CLUSTER + "; test_the_gateway_matches_the_route "
    "checks the YAML",
    "docker build --build-arg GIT_SHA=$(git rev-parse HEAD) -t "
    "ghcr.io/your-org/ai-service:$(git rev-parse HEAD) .": "needs docker; tests/k8s/test_image.py "
    "builds the image with buildah",
    "kind load docker-image ghcr.io/your-org/ai-service:$(git rev-parse HEAD) --name ai-rollout": (
        NEEDS_A_CLUSTER
    ),
    "kubectl create namespace ai-staging": NEEDS_A_CLUSTER,
    "kubectl -n ai-staging create secret generic ai-service-secrets "
    "--from-env-file=k8s/secrets.env": NEEDS_A_CLUSTER + " and the reader's secrets",
    "cd k8s/overlays/staging && kustomize edit set image "
    "ai-service=ghcr.io/your-org/ai-service:$(git rev-parse HEAD) && cd -": "needs the standalone "
    "kustomize binary (the pinned kubectl only builds); test_manifests sets the tag instead",
    "kubectl apply --server-side --field-manager=kustomize -k k8s/overlays/staging": (
        NEEDS_A_CLUSTER + "; the weights' ownership under a re-apply is tested on the emulator"
    ),
    ".venv/bin/python -m scripts.deploy --backend gateway-api --namespace ai-staging --sha "
    "$(git rev-parse HEAD)": "tests/scripts/test_kube_rollouts.py runs it on the emulator",
    "kubectl -n ai-staging port-forward svc/ai-service-stable 8001:8000 &": NEEDS_A_CLUSTER,
    "kubectl -n ai-staging port-forward svc/ai-service-canary 8002:8000 &": NEEDS_A_CLUSTER,
    ".venv/bin/python -m scripts.monitor_canary --act --backend gateway-api --namespace "
    "ai-staging --stable-url http://127.0.0.1:8001 --canary-url http://127.0.0.1:8002": (
        "needs the pods' /metrics; tests/scripts/test_kube_rollouts.py runs it with stand-ins"
    ),
    ".venv/bin/python -m scripts.rollback --backend gateway-api --namespace ai-staging": (
        "tests/scripts/test_kube_rollouts.py runs it on the emulator"
    ),
    ".venv/bin/python -m scripts.promote --target prompt --registry-configmap ai-service-registry "
    "--namespace ai-staging --add examples/prompts/rag_answer/v2.yaml --candidate v2 --to 5": (
        "tests/scripts/toolkit/traffic/test_prompt_configmap.py runs it on the emulator"
    ),
    ".venv/bin/python -m scripts.monitor_canary --act --target prompt --registry-configmap "
    "ai-service-registry --namespace ai-staging --stable-url http://127.0.0.1:8001": (
        "needs the pods' /metrics; test_prompt_configmap.py runs it against a real service"
    ),
    ".venv/bin/python -m scripts.rollback --target prompt --registry-configmap ai-service-registry "
    "--namespace ai-staging": "tests/scripts/toolkit/traffic/test_prompt_configmap.py runs it",
}


def section() -> str:
    text = (REPO_ROOT / "DEPLOYING.md").read_text(encoding="utf-8")
    assert TITLE in text, "DEPLOYING.md has the Kubernetes section"
    body = text.split(TITLE, 1)[1]
    return body.split("\n## ", 1)[0]


def commands() -> list[str]:
    """The section's `sh` block lines, continuations joined and comments dropped."""
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", section(), re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s{2,}#.*$", "", line).strip()
            if command and not command.startswith("#"):
                found.append(re.sub(r"\s+", " ", command))
    return found


def runs_here(command: str) -> bool:
    return command.startswith("kubectl kustomize ") or command.endswith(("--dry-run", "--help"))


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    """The staging overlay, stable at HEAD~1, a canary Deployment at HEAD~1 with no pods."""
    with KubeCluster(namespace=NAMESPACE) as running:
        seed(running, sha=shas()[1])
        yield running


def test_every_command_runs_here_or_says_why_not() -> None:
    listed = commands()
    assert listed, "the section has commands"
    unexplained = [c for c in listed if not runs_here(c) and c not in NOT_RUN]
    assert not unexplained, f"run these here, or say in NOT_RUN why not: {unexplained}"
    assert set(NOT_RUN) <= set(listed), f"no longer documented: {set(NOT_RUN) - set(listed)}"


def test_the_commands_that_can_run_here_run(cluster: KubeCluster, tmp_path: Path) -> None:
    env = {k: v for k, v in cluster.env().items() if not k.startswith("ROLLOUT_")}
    env["PATH"] = os.pathsep.join(
        [str(Path(kubectl()).parent), str(REPO_ROOT / ".venv" / "bin"), env.get("PATH", "")]
    )
    env.pop("GITHUB_STEP_SUMMARY", None)
    ran = 0
    for command in commands():
        if not runs_here(command):
            continue
        mark = cluster.mark()
        result = subprocess.run(
            ["bash", "-c", f"set -eo pipefail\n{command}"],  # noqa: S607  # bash from PATH
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{result.stderr}"
        writes = [r for r in cluster.requests_since(mark) if r.method != "GET"]
        if command.endswith("--dry-run"):
            assert "dry-run: PATCH /api" in result.stderr, command
            assert writes == [], f"`{command}` changed the cluster: {writes}"
        elif command.endswith("--help"):
            assert "--dry-run" in result.stdout, command
        else:
            kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout) if d}
            assert {"HTTPRoute", "Deployment", "Role"} <= kinds, command
        ran += 1
    assert ran >= 5


def test_the_gateway_matches_the_route() -> None:
    (block,) = re.findall(r"^```yaml\n(.*?)^```", section(), re.M | re.S)
    documents = [d for d in yaml.safe_load_all(block) if d]
    gateway = next(d for d in documents if d["kind"] == "Gateway")
    route = yaml.safe_load((REPO_ROOT / "k8s" / "base" / "httproute.yaml").read_text())
    (parent,) = route["spec"]["parentRefs"]
    assert gateway["metadata"] == {"name": parent["name"], "namespace": parent["namespace"]}
    kinds = {d["kind"] for d in documents}
    assert kinds == {"GatewayClass", "Namespace", "Gateway"}
