"""Options several scripts share: the policy, and what rolls out where."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from contract.files import REPO_ROOT
from contract.tracks import Track
from scripts.toolkit.cli import ToolkitError, option, positive
from scripts.toolkit.policy import DEFAULT_POLICY
from scripts.toolkit.registry_store import FolderStore, RegistryStore
from scripts.toolkit.targets import CodeTarget, PromptTarget, RolloutTarget
from scripts.toolkit.traffic.base import TrafficBackend
from scripts.toolkit.traffic.factory import BACKENDS, CLUSTER_BACKENDS, build_backend

if TYPE_CHECKING:
    from scripts.toolkit.traffic.kube.client import ClusterOptions

DEFAULT_PLATFORM_DIR = REPO_ROOT / ".local" / "platform"
Parser = argparse.ArgumentParser | argparse._ArgumentGroup


def add_policy_option(parser: Parser, what: str) -> None:
    """--policy, the rollout policy file; `what` says what the command reads from it."""
    option(
        parser, "--policy", type=Path, default=DEFAULT_POLICY, default_text="rollout/policy.yaml",
        help=f"rollout policy: {what}",
    )  # fmt: skip


def add_platform_option(parser: Parser) -> None:
    """--platform-dir, the local platform's folder (state file, logs, registry copy)."""
    option(
        parser, "--platform-dir", type=Path, default=DEFAULT_PLATFORM_DIR,
        default_text=".local/platform", help="the local platform's folder",
    )  # fmt: skip


def platform_admin_token(platform_dir: Path, urls: Iterable[str | None]) -> str | None:
    """The local platform's admin token when every URL is its router or one of its instances
    (on 127.0.0.1 or localhost), else None: a token is never sent to a service not ours."""
    from scripts.toolkit.platform.state import StateStore  # noqa: PLC0415  # optional part

    state = StateStore(platform_dir).try_read()
    named = [urlsplit(u) for u in urls if u]
    if state is None or not named:
        return None
    ports = {state.router_port, *(r.port for r in state.processes.values())}
    ours = all(u.hostname in ("127.0.0.1", "localhost") and u.port in ports for u in named)
    return state.admin_token if ours else None


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """--target, --backend, --platform-dir, --registry-dir, --prompt and the URLs."""
    group = parser.add_argument_group("what rolls out")
    option(
        group, "--target", choices=["code", "prompt"], default="code",
        help="a code version behind the traffic backend, or a prompt/model version in the registry",
    )  # fmt: skip
    option(group, "--backend", choices=BACKENDS, default="local", help="traffic backend for code")
    add_platform_option(group)
    option(
        group, "--registry-dir", type=Path,
        help="registry folder for prompt rollouts (default: the local platform's copy when it "
        "runs, else registry/)",
    )  # fmt: skip
    option(
        group, "--registry-configmap", metavar="NAME",
        help="on a cluster: the registry ConfigMap that prompt rollouts change through the API "
        "(e.g. ai-service-registry; with --namespace/--kubeconfig/--context/--dry-run)",
    )  # fmt: skip
    option(group, "--prompt", default="rag_answer", help="prompt name for prompt rollouts")
    for track in (Track.STABLE, Track.CANARY):
        option(
            group, f"--{track}-url", repeat=True,
            help=f"base URL of a {track} instance, for scraping",
        )  # fmt: skip
    add_cluster_options(parser)


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """How the cluster backends reach the cluster and name its objects (defaults: k8s/)."""
    group = parser.add_argument_group(f"cluster backends ({', '.join(CLUSTER_BACKENDS)})")
    option(
        group, "--kubeconfig", type=Path,
        help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, else the in-cluster "
        "service account)",
    )  # fmt: skip
    option(group, "--context", help="kubeconfig context (default: its current context)")
    option(group, "--namespace", help="namespace of the service (default: the context's)")
    option(group, "--app", default="ai-service", help="name of the service's objects")
    option(group, "--route", default="ai-service", help="HTTPRoute (gateway-api)")
    option(group, "--rule", default="ai-service", help="name of the route's rule it weights")
    option(
        group, "--api-timeout", type=positive(float), default=30.0,
        help="seconds one change may take, retries included (a rollback's traffic move too)",
    )  # fmt: skip
    option(
        group, "--wait-timeout", type=positive(float), default=300.0,
        help="seconds to wait for pods to be ready and for the gateway to accept the route",
    )  # fmt: skip
    option(
        group, "--dry-run", flag=True,
        help="print the requests that would change the cluster instead of sending them",
    )  # fmt: skip


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    """How the options say to reach the cluster."""
    from scripts.toolkit.traffic.kube.client import ClusterOptions  # noqa: PLC0415  # optional part

    return ClusterOptions(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=args.namespace,
        api_timeout=args.api_timeout,
        wait_timeout=args.wait_timeout,
        dry_run=args.dry_run,
    )


def registry_store(args: argparse.Namespace, local: bool) -> RegistryStore:
    """Where prompt rollouts change the registry: the ConfigMap named by --registry-configmap,
    else --registry-dir, the local platform's copy, or registry/."""
    from scripts.toolkit.platform.state import registry_dir  # noqa: PLC0415  # optional part

    if args.registry_configmap:
        if args.registry_dir:
            raise ToolkitError(
                "--registry-dir and --registry-configmap name two registries; pass one."
            )
        from scripts.toolkit.traffic.kube.client import connect  # noqa: PLC0415  # optional part
        from scripts.toolkit.traffic.kube.registry import ConfigMapStore  # noqa: PLC0415

        return ConfigMapStore(connect(cluster_options(args)), args.registry_configmap)
    folder = args.registry_dir or (registry_dir(args.platform_dir) if local else None)
    return FolderStore(folder or REPO_ROOT / "registry")


def build_backend_of(args: argparse.Namespace) -> TrafficBackend:
    """The traffic backend the options name."""
    from scripts.toolkit.traffic.kube.workloads import Names  # noqa: PLC0415  # optional part

    cluster = cluster_options(args)
    names = Names(app=args.app, route=args.route, rule=args.rule)
    return build_backend(args.backend, platform_dir=args.platform_dir, cluster=cluster, names=names)


def build_target(args: argparse.Namespace) -> RolloutTarget:
    """The rollout target the options describe, with URLs filled in from the local platform."""
    from scripts.toolkit.platform.state import StateStore, track_urls  # noqa: PLC0415  # optional part

    local = args.backend == "local" and not args.registry_configmap
    if args.registry_configmap and args.target != "prompt":
        raise ToolkitError("--registry-configmap is for prompt rollouts: add --target prompt.")
    urls = track_urls(args.platform_dir) if local else {}
    stable = args.stable_url or urls.get(Track.STABLE, [])
    canary = args.canary_url or urls.get(Track.CANARY, [])
    if args.target == "prompt":
        return PromptTarget(
            store=registry_store(args, local),
            prompt=args.prompt,
            urls=stable + canary,
        )
    backend = build_backend_of(args)
    state = StateStore(args.platform_dir).try_read() if local else None
    router = state.router_url if state else None  # counts the requests a track failed
    return CodeTarget(backend=backend, stable_urls=stable, canary_urls=canary, router_url=router)
