"""Prompt rollouts on a cluster (issue 8, item 5): `promote`, `rollback` and `monitor_canary`
with `--target prompt --registry-configmap` change the staging overlay's registry ConfigMap on
the stricter emulator, one guarded JSON Patch at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contract.files import REPO_ROOT as REPO
from contract.registry.configmap import CONFIGMAP_NAME, read_data, to_configmap_key
from contract.registry.loader import load_registry
from scripts import promote, rollback
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import EXIT_INCONCLUSIVE, EXIT_TRAFFIC_UNKNOWN, EXIT_USAGE
from scripts.toolkit.traffic.kube.client import ClusterOptions, connect
from scripts.toolkit.traffic.kube.registry import ConfigMapStore
from tests.support.kube import KubeCluster, LoggedRequest
from tests.support.kube_objects import NAMESPACE
from tests.support.polling import poll_until
from tests.support.registry import EXAMPLES, example_prompt
from tests.support.service import StartApp

V1 = to_configmap_key("prompts/rag_answer/v1.yaml")
V2 = to_configmap_key("prompts/rag_answer/v2.yaml")
MODEL = to_configmap_key("models/extractive-mini/v2025-08/config.yaml")
CONFIGMAP_PATH = f"/configmaps/{CONFIGMAP_NAME}"


def data(cluster: KubeCluster) -> dict[str, str]:
    found = cluster.get("v1", "ConfigMap", CONFIGMAP_NAME)
    assert found is not None
    return dict(found["data"])


def fields(cluster: KubeCluster, key: str) -> tuple[str, float]:
    """(status, traffic_percentage) of the prompt file under `key`."""
    loaded: dict[str, Any] = yaml.safe_load(data(cluster)[key])
    return loaded["status"], float(loaded.get("traffic_percentage", 0.0))


def cli(cluster: KubeCluster, *extra: str) -> list[str]:
    return [
        "--target", "prompt", "--registry-configmap", CONFIGMAP_NAME,
        "--kubeconfig", str(cluster.kubeconfig), "--api-timeout", "3", *extra,
    ]  # fmt: skip


def writes(requests: list[LoggedRequest]) -> list[LoggedRequest]:
    return [r for r in requests if r.method not in ("GET",) and CONFIGMAP_PATH in r.path]


def loads(cluster: KubeCluster, tmp_path: Path) -> None:
    """The ConfigMap's registry loads with the contract's loader (what the service serves)."""
    folder = tmp_path / "check"
    for path, content in read_data(data(cluster)).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    load_registry(folder)


def test_a_prompt_canary_starts_is_promoted_and_another_is_rolled_back(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    before = data(cluster)
    mark = cluster.mark()
    add = str(EXAMPLES / "rag_answer" / "v2.yaml")
    assert promote.main(cli(cluster, "--add", add, "--candidate", "v2", "--to", "5")) == 0
    assert fields(cluster, V2) == ("canary", 5.0)
    assert fields(cluster, V1) == ("production", 0.0)
    patches = writes(cluster.requests_since(mark))
    assert [r.method for r in patches] == ["PATCH", "PATCH"]  # --add, then the canary
    for request in patches:
        assert request.content_type == "application/json-patch+json"
        assert request.status == 200
        assert request.query["fieldManager"] == "ai-rollout-toolkit"
        assert request.body[0]["op"] == "test"
        assert request.body[0]["path"] == "/metadata/resourceVersion"
    assert {op["path"] for op in patches[1].body[1:]} == {f"/data/{V2}"}  # only what changed
    assert {k: v for k, v in data(cluster).items() if k != V2} == before
    loads(cluster, tmp_path)

    assert promote.main(cli(cluster, "--to", "20")) == 0
    assert fields(cluster, V2) == ("canary", 20.0)
    assert promote.main(cli(cluster, "--to", "full")) == 0
    assert (fields(cluster, V1), fields(cluster, V2)) == (("retired", 0.0), ("production", 0.0))

    add = str(EXAMPLES / "rag_answer" / "v2-concise.yaml")
    assert promote.main(cli(cluster, "--add", add, "--candidate", "v2-concise", "--to", "5")) == 0
    concise = to_configmap_key("prompts/rag_answer/v2-concise.yaml")
    assert fields(cluster, concise) == ("canary", 5.0)
    mark = cluster.mark()
    assert rollback.main(cli(cluster)) == 0
    assert fields(cluster, concise) == ("retired", 0.0)
    assert fields(cluster, V2) == ("production", 0.0)
    sent = cluster.requests_since(mark)
    assert sent[0].method == "GET" and sent[1].method == "PATCH"  # read once, then the write
    assert rollback.main(cli(cluster)) == 0  # idempotent: nothing to roll back, nothing written
    loads(cluster, tmp_path)


def test_a_concurrent_edit_is_re_read_not_overwritten(cluster: KubeCluster) -> None:
    """Another writer changes the ConfigMap between the toolkit's read and its write: the
    guarded patch fails (422), the change is re-applied to what the other writer left."""
    cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {V2: example_prompt(
        "rag_answer", "v2", status="retired", traffic_percentage=0.0)}})  # fmt: skip
    kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, api_timeout=3))
    store = ConfigMapStore(kube)
    other = data(cluster)[MODEL] + "# tuned by another writer\n"
    edits = 0

    def start(folder: Path) -> registry_ops.PromptRollout:
        nonlocal edits
        edits += 1
        if edits == 1:  # after the toolkit's read, before its write
            cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {MODEL: other}})
        return registry_ops.start_canary(folder, "rag_answer", "v2", 5)

    mark = cluster.mark()
    store.change(start)
    assert edits == 2
    assert data(cluster)[MODEL] == other  # the other writer's change stays
    assert fields(cluster, V2) == ("canary", 5.0)  # and ours is made on top of it
    statuses = [r.status for r in writes(cluster.requests_since(mark))]
    assert statuses in ([409, 200], [422, 200])


def test_a_change_that_breaks_the_registry_is_refused_and_nothing_is_written(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = example_prompt("rag_answer", "v2", status="retired", model="missing-model@v1")
    cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {V2: broken}})
    before = cluster.get("v1", "ConfigMap", CONFIGMAP_NAME)
    mark = cluster.mark()
    assert promote.main(cli(cluster, "--candidate", "v2", "--to", "5")) == EXIT_USAGE
    error = capsys.readouterr().err
    assert f"refused: the change would make ConfigMap ai-staging/{CONFIGMAP_NAME}" in error
    assert "missing-model@v1 is not in registry/models" in error
    assert "nothing was written" in error and "registry-" not in error  # no scratch path
    assert cluster.get("v1", "ConfigMap", CONFIGMAP_NAME) == before
    assert not writes(cluster.requests_since(mark))


def test_dry_run_prints_the_patch_and_changes_nothing(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {V2: example_prompt(
        "rag_answer", "v2", status="retired", traffic_percentage=0.0)}})  # fmt: skip
    before = cluster.get("v1", "ConfigMap", CONFIGMAP_NAME)
    assert before is not None
    mark = cluster.mark()
    assert promote.main(cli(cluster, "--candidate", "v2", "--to", "5", "--dry-run")) == 0
    err = capsys.readouterr().err
    path = f"/api/v1/namespaces/ai-staging/configmaps/{CONFIGMAP_NAME}"
    assert f"dry-run: PATCH {path}?fieldManager=ai-rollout-toolkit" in err
    assert "Content-Type: application/json-patch+json" in err
    printed = json.loads(err.split("application/json-patch+json\n")[1].splitlines()[0])
    version = before["metadata"]["resourceVersion"]
    assert printed[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": version}
    assert [op["path"] for op in printed[1:]] == [f"/data/{V2}"]
    assert "status: canary" in printed[1]["value"]
    assert cluster.get("v1", "ConfigMap", CONFIGMAP_NAME) == before
    assert not writes(cluster.requests_since(mark))

    # Two changes in one command: the second is printed as it would follow the first.
    add = str(EXAMPLES / "rag_answer" / "v2-concise.yaml")
    args = cli(cluster, "--add", add, "--candidate", "v2-concise", "--to", "5", "--dry-run")
    assert promote.main(args) == 0
    err = capsys.readouterr().err
    first, second = [json.loads(line) for line in err.splitlines() if line.startswith("  [")]
    concise = f"/data/{to_configmap_key('prompts/rag_answer/v2-concise.yaml')}"
    assert (first[1]["op"], first[1]["path"]) == ("add", concise)
    assert "status: retired" in first[1]["value"]
    assert (second[1]["op"], second[1]["path"]) == ("replace", concise)
    assert "status: canary" in second[1]["value"]
    assert "canary v2-concise 5%" in err  # what the printed patches would leave
    assert cluster.get("v1", "ConfigMap", CONFIGMAP_NAME) == before
    assert not writes(cluster.requests_since(mark))


def test_a_rollback_the_api_cannot_confirm_exits_4_in_bounded_time(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    add = str(EXAMPLES / "rag_answer" / "v2.yaml")
    assert promote.main(cli(cluster, "--add", add, "--candidate", "v2", "--to", "5")) == 0
    capsys.readouterr()
    cluster.stop_server()
    started = time.monotonic()
    assert rollback.main(cli(cluster, "--api-timeout", "1.5")) == EXIT_TRAFFIC_UNKNOWN
    took = time.monotonic() - started
    error = capsys.readouterr().err
    assert "registry state unknown" in error and "run the rollback again" in error
    assert took < 4, f"the rollback took {took:.1f} s with a 1.5 s API timeout"
    cluster.start_server()
    assert fields(cluster, V2) == ("canary", 5.0)  # nothing claimed that did not happen
    cluster.fail(status=503, seconds=0.5)  # a short outage within the bound: retried, done
    assert rollback.main(cli(cluster)) == 0
    assert fields(cluster, V2) == ("retired", 0.0)


def test_the_registry_configmap_is_for_prompt_rollouts_only(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    args = cli(cluster, "--to", "5")
    assert promote.main([a if a != "prompt" else "code" for a in args]) == EXIT_USAGE
    assert "--registry-configmap is for prompt rollouts" in capsys.readouterr().err
    missing = cli(cluster, "--namespace", "elsewhere", "--to", "5")
    assert promote.main(missing) == EXIT_USAGE
    assert f"ConfigMap elsewhere/{CONFIGMAP_NAME} does not exist" in capsys.readouterr().err


def served(url: str) -> dict[str, str]:
    """The versions of rag_answer the service serves now, by status (its /version)."""
    body: dict[str, Any] = httpx.get(f"{url}/version", timeout=5).json()
    return {v["version"]: v["status"] for v in body["registry"]["prompts"]["rag_answer"]}


def toolkit(cluster: KubeCluster, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m scripts.<module>` on the registry ConfigMap, as a workflow runs it."""
    command = [sys.executable, "-m", f"scripts.{module}", *cli(cluster, *args)]
    env = {k: v for k, v in cluster.env().items() if not k.startswith("ROLLOUT_")}
    return subprocess.run(  # our own module, fixed arguments
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.integration
def test_a_running_service_serves_the_promoted_prompt_within_5_seconds_and_the_monitor_reads_it(
    cluster: KubeCluster, start_app: StartApp, tmp_path: Path
) -> None:
    """End to end: `python -m app` watching the ConfigMap (as in the pods), the toolkit's CLIs
    as subprocesses; the monitor reads the two prompt arms from the service's /metrics."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "namespace").write_text(NAMESPACE)
    (account / "token").write_text("pod-token")
    app = start_app(
        registry_reload_seconds="0",
        registry_configmap=CONFIGMAP_NAME,
        kubernetes_api_url=cluster.url,
        kubernetes_service_account_dir=str(account),
    )
    assert served(app.url) == {"v1": "production"}

    add = str(EXAMPLES / "rag_answer" / "v2.yaml")
    started = toolkit(cluster, "promote", "--add", add, "--candidate", "v2", "--to", "50")
    assert started.returncode == 0, started.stderr
    done = time.monotonic()
    poll_until(
        lambda: served(app.url) == {"v1": "production", "v2": "canary"},
        timeout=5, interval=0.02, message="the service serves the canary",
    )  # fmt: skip
    applied = time.monotonic() - done
    print(f"the canary served {applied:.2f} s after `promote` returned")  # the figure, with -s
    assert applied < 5

    for user in range(40):  # by user: about half of them get the canary
        answer = httpx.post(
            f"{app.url}/v1/answer",
            json={"question": "How long do refunds take?", "user_id": f"user-{user}"},
            timeout=10,
        )
        assert answer.status_code == 200
    state = tmp_path / "monitor.json"
    monitor = toolkit(
        cluster, "monitor_canary", "--once", "--stable-url", app.url,
        "--state-file", str(state), "--output", "json",
    )  # fmt: skip
    assert monitor.returncode in (0, EXIT_INCONCLUSIVE), monitor.stderr
    report = json.loads(monitor.stdout)["data"]
    assert report["target"]["canary"] == "v2" and report["target"]["production"] == "v1"
    (errors,) = [m for m in report["last_check"]["verdict"]["metrics"] if m["name"] == "error_rate"]
    assert errors["stable_n"] > 0 and errors["canary_n"] > 0, errors  # each arm: its version's
    assert errors["stable_n"] + errors["canary_n"] == 40  # every answer, in one arm only
    configmap = cluster.get("v1", "ConfigMap", CONFIGMAP_NAME)
    assert configmap is not None
    annotations = configmap["metadata"]["annotations"]
    assert json.loads(annotations["ai-rollout-template/monitor"])["checks"] == 1
    fresh = toolkit(  # another machine: no state file, the progress comes from the ConfigMap
        cluster, "monitor_canary", "--once", "--stable-url", app.url,
        "--state-file", str(tmp_path / "elsewhere.json"), "--output", "json",
    )  # fmt: skip
    assert fresh.returncode in (0, EXIT_INCONCLUSIVE), fresh.stderr
    assert len(json.loads(fresh.stdout)["data"]["history"]) == 2
    assert "sessionPersistence" not in fresh.stderr  # the route's note is for code canaries
    assert served(app.url) == {"v1": "production", "v2": "canary"}  # annotations: no change

    started = toolkit(cluster, "promote", "--to", "full")
    assert started.returncode == 0, started.stderr
    done = time.monotonic()
    poll_until(
        lambda: served(app.url) == {"v1": "retired", "v2": "production"},
        timeout=5, interval=0.02, message="the service serves the promoted version",
    )  # fmt: skip
    assert time.monotonic() - done < 5


def test_a_422_nobody_else_caused_is_the_apis_refusal_not_a_conflict(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 422 (a failed `test`, or content the API refuses, e.g. over 1 MiB) with the ConfigMap
    unchanged when re-read is not another writer: one sentence after one retry, not ten."""
    cluster.fail(status=422, method="PATCH", path_contains=CONFIGMAP_PATH)
    mark = cluster.mark()
    add = str(EXAMPLES / "rag_answer" / "v2.yaml")
    assert promote.main(cli(cluster, "--add", add)) == EXIT_USAGE
    error = capsys.readouterr().err
    assert f"the Kubernetes API refused the change to ConfigMap ai-staging/{CONFIGMAP_NAME}" in (
        error
    )
    assert len(writes(cluster.requests_since(mark))) == 1
    assert V2 not in data(cluster)
