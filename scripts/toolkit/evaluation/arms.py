"""The two arms: which service answers each, checked against its `/version` before any question.

`service_info` is the toolkit's one reader of a service's `/version` for a prompt's versions."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.registry_ops import ADD_COMMAND


@dataclass(frozen=True)
class ArmService:
    """One arm: the service that answers and, optionally, the prompt version pinned on it."""

    role: str  # "candidate" or "baseline"
    url: str
    version: str | None = None


@dataclass(frozen=True)
class ServiceInfo:
    """What `/version` says about a service and the prompt under evaluation."""

    url: str
    app_version: str
    git_sha: str
    track: str
    versions: dict[str, str]  # prompt version -> status
    traffic: dict[str, float]  # prompt version -> traffic percentage
    production: str


def service_info(url: str, prompt: str, *, timeout: float) -> ServiceInfo:
    """Read `/version`; a service that cannot be reached or lacks the prompt is a usage error."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/version", timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except httpx.HTTPStatusError as exc:
        raise ToolkitError(
            f"{url}/version answered HTTP {exc.response.status_code}; is it this service?"
        ) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise ToolkitError(
            f"cannot reach the service at {url} ({exc.__class__.__name__}); "
            "start it or fix the URL."
        ) from exc
    prompts = body.get("registry", {}).get("prompts", {})
    if prompt not in prompts:
        known = ", ".join(sorted(prompts)) or "none"
        raise ToolkitError(f"the service at {url} has no prompt '{prompt}' (it has: {known}).")
    versions = {str(v["version"]): str(v["status"]) for v in prompts[prompt]}
    return ServiceInfo(
        url=url,
        app_version=str(body.get("app_version", "")),
        git_sha=str(body.get("git_sha", "")),
        track=str(body.get("track", "")),
        versions=versions,
        traffic={str(v["version"]): float(v.get("traffic_percentage", 0)) for v in prompts[prompt]},
        production=next((v for v, s in versions.items() if s == "production"), ""),
    )


def resolve_arms(
    *,
    prompt: str,
    url: str | None,
    candidate_url: str | None,
    baseline_url: str | None,
    candidate_version: str | None,
    baseline_version: str | None,
    admin_token: str | None,
    timeout: float,
) -> tuple[ArmService, ArmService, ServiceInfo, ServiceInfo]:
    """The two arms, checked against the services' `/version` before any question is asked."""
    cand_url, base_url = candidate_url or url, baseline_url or url
    if not cand_url or not base_url:
        raise ToolkitError(
            "name the service: --url with --candidate-version, "
            "or --candidate-url and --baseline-url."
        )
    infos = {
        u: service_info(u, prompt, timeout=timeout) for u in dict.fromkeys([cand_url, base_url])
    }
    cand_info, base_info = infos[cand_url], infos[base_url]
    if cand_url == base_url and candidate_version is None:
        raise ToolkitError("with one service URL, name the candidate with --candidate-version.")
    if candidate_version is not None and cand_url == base_url and baseline_version is None:
        baseline_version = base_info.production
    for version, info in ((candidate_version, cand_info), (baseline_version, base_info)):
        if version is not None and version not in info.versions:
            known = ", ".join(sorted(info.versions))
            raise ToolkitError(
                f"the service at {info.url} has no version '{version}' of prompt '{prompt}' "
                f"(it has: {known}); register it in the registry that service reads: "
                f"`{ADD_COMMAND} examples/prompts/{prompt}/{version}.yaml` (the local "
                "platform's copy; --registry-dir for another)."
            )
    if (candidate_version or baseline_version) and not admin_token:
        raise ToolkitError(
            "pinning prompt versions needs the service's admin token: set ROLLOUT_ADMIN_TOKEN "
            "(or --admin-token); on the local platform it is read from its state file when "
            "--url is its router or one of its instances (--platform-dir)."
        )
    candidate = ArmService("candidate", cand_url, candidate_version)
    baseline = ArmService("baseline", base_url, baseline_version)
    return candidate, baseline, cand_info, base_info
