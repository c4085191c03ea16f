"""Options shared by monitor_canary, promote and rollback: what rolls out, and where."""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.toolkit.cli import env
from scripts.toolkit.policy import DEFAULT_POLICY
from scripts.toolkit.targets import CodeTarget, PromptTarget, RolloutTarget
from scripts.toolkit.traffic.factory import BACKENDS, build_backend

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLATFORM_DIR = REPO / ".local" / "platform"


def add_policy_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """--policy, the rollout policy file; `what` says what the command reads from it."""
    parser.add_argument(
        "--policy", type=Path, default=Path(env("policy", str(DEFAULT_POLICY)) or ""),
        help=f"rollout policy: {what} (env ROLLOUT_POLICY; default rollout/policy.yaml)",
    )  # fmt: skip


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """--target, --backend, --platform-dir, --registry-dir, --prompt and the URLs."""
    group = parser.add_argument_group("what rolls out (env ROLLOUT_<OPTION>)")
    group.add_argument(
        "--target",
        choices=["code", "prompt"],
        default=env("target", "code"),
        help="a code version behind the traffic backend, or a prompt/model "
        "version in the registry (default: code)",
    )
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=env("backend", "local"),
        help="traffic backend for code rollouts (default: local)",
    )
    group.add_argument(
        "--platform-dir",
        type=Path,
        default=Path(env("platform_dir", str(DEFAULT_PLATFORM_DIR)) or "."),
        help="state folder of the local platform (default: .local/platform)",
    )
    group.add_argument(
        "--registry-dir",
        type=Path,
        default=_opt_path(env("registry_dir")),
        help="registry folder for prompt rollouts (default: the local "
        "platform's copy when it runs, else registry/)",
    )
    group.add_argument(
        "--prompt",
        default=env("prompt", "rag_answer"),
        help="prompt name for prompt rollouts (default: rag_answer)",
    )
    group.add_argument(
        "--stable-url",
        action="append",
        default=_urls("stable_url"),
        help="base URL of a stable instance, for scraping (repeatable)",
    )
    group.add_argument(
        "--canary-url",
        action="append",
        default=_urls("canary_url"),
        help="base URL of a canary instance, for scraping (repeatable)",
    )


def _opt_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _urls(name: str) -> list[str]:
    value = env(name)
    return value.split(",") if value else []


def platform_urls(platform_dir: Path) -> dict[str, list[str]]:
    """Base URLs per track of a running local platform (empty when none runs)."""
    from scripts.toolkit.platform.state import track_urls  # noqa: PLC0415  # optional part

    return track_urls(platform_dir)


def platform_registry(platform_dir: Path) -> Path | None:
    """The registry copy a running local platform serves, if any."""
    from scripts.toolkit.platform.state import registry_dir  # noqa: PLC0415  # optional part

    return registry_dir(platform_dir)


def build_target(args: argparse.Namespace) -> RolloutTarget:
    """The rollout target the options describe, with URLs filled in from the local platform."""
    local = args.backend == "local"
    urls = platform_urls(args.platform_dir) if local else {}
    if args.target == "prompt":
        registry = args.registry_dir or (platform_registry(args.platform_dir) if local else None)
        registry = registry or REPO / "registry"
        instances = (args.stable_url or urls.get("stable", [])) + (
            args.canary_url or urls.get("canary", [])
        )
        return PromptTarget(registry_dir=registry, prompt=args.prompt, urls=instances)
    backend = build_backend(args.backend, platform_dir=args.platform_dir)
    return CodeTarget(
        backend=backend,
        stable_urls=args.stable_url or urls.get("stable", []),
        canary_urls=args.canary_url or urls.get("canary", []),
    )
