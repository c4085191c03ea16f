"""The two arms: which service answers each, checked against its `/version` before any question,
and asking them every question over one shared client.

`service_info` is the toolkit's one reader of a service's `/version` for a prompt's versions.
Both arms answer every question in the same run (interleaved per question, the order
alternating), so drift in the service, the machine or the data affects them alike and each
question yields a paired difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from contract.http import ADMIN_TOKEN_HEADER, ANSWER_PATH, PIN_PROMPT_VERSION_HEADER
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.evaluation.dataset import GoldenCase
from scripts.toolkit.evaluation.scoring import Answer
from scripts.toolkit.registry_ops import ADD_COMMAND

REGISTRY_SETTLE_SECONDS = 5.0


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
    # Pairs, not a dict: with one URL for both arms, the baseline's None must not hide the
    # candidate's version.
    named = [(cand_url, candidate_version), (base_url, baseline_version)]
    # A version registered a moment ago shows once the service has reloaded its registry (it
    # polls every APP_REGISTRY_RELOAD_SECONDS): wait that long before calling it missing.
    deadline = time.monotonic() + REGISTRY_SETTLE_SECONDS
    while True:
        infos = {
            u: service_info(u, prompt, timeout=timeout) for u in dict.fromkeys([cand_url, base_url])
        }
        missing = [v for u, v in named if v is not None and v not in infos[u].versions]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.25)
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


def _parse_answer(body: Any, elapsed: float) -> Answer:
    try:
        return Answer(
            text=str(body["answer"]),
            refused=bool(body["quality"]["refused"]),
            groundedness=float(body["quality"]["groundedness"]),
            cost_usd=float(body["usage"]["estimated_cost_usd"]),
            latency_seconds=elapsed,
            prompt_version=str(body["prompt"]["version"]),
            model=f"{body['model']['name']}@{body['model']['version']}",
        )
    except (KeyError, TypeError, ValueError):
        return Answer(error="malformed response body")


@dataclass
class Asker:
    """Asks one question of one arm over a shared client."""

    client: httpx.AsyncClient
    prompt: str
    admin_token: str | None
    retries: int

    async def ask(self, arm: ArmService, case: GoldenCase) -> Answer:
        """One answer; connection errors are retried, nothing else is."""
        headers = {}
        if arm.version is not None:
            headers = {
                PIN_PROMPT_VERSION_HEADER: arm.version,
                ADMIN_TOKEN_HEADER: self.admin_token or "",
            }
        # A fixed user id keeps an unpinned service's variant assignment deterministic, and
        # counts the evaluation as one user in the experiment metrics (not one per request).
        payload = {"question": case.question, "prompt": self.prompt, "user_id": "evaluate-quality"}
        url = arm.url.rstrip("/") + ANSWER_PATH
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            try:
                response = await self.client.post(url, json=payload, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise ToolkitError(
                        f"lost the {arm.role} service at {arm.url} ({exc.__class__.__name__})."
                    ) from exc
                await asyncio.sleep(0.25 * 2**attempt)
                continue
            except httpx.TimeoutException:
                return Answer(error="timeout")
            except httpx.HTTPError as exc:
                return Answer(error=exc.__class__.__name__)
            return self._answer(arm, response, time.perf_counter() - started)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, arm: ArmService, response: httpx.Response, elapsed: float) -> Answer:
        if response.status_code >= 500 or response.status_code == 429:
            return Answer(error=f"HTTP {response.status_code}")
        if response.status_code != 200:
            # The service refused the request itself: a wrong token, version or prompt.
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:200]
            raise ToolkitError(
                f"the {arm.role} service at {arm.url} refused the request "
                f"(HTTP {response.status_code}: {detail.rstrip('.')})."
            )
        try:
            body = response.json()
        except ValueError:
            return Answer(error="response is not JSON")
        answer = _parse_answer(body, elapsed)
        if (
            arm.version is not None
            and answer.error is None
            and answer.prompt_version != arm.version
        ):
            return Answer(error=f"served {answer.prompt_version}, not the pinned {arm.version}")
        return answer


async def collect_answers(
    cases: Sequence[GoldenCase],
    candidate: ArmService,
    baseline: ArmService,
    *,
    prompt: str,
    admin_token: str | None,
    concurrency: int,
    timeout: float,
    retries: int,
) -> list[tuple[Answer, Answer]]:
    """(candidate, baseline) answers per case, in the order of `cases`."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(
        max_connections=2 * concurrency, max_keepalive_connections=2 * concurrency
    )
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        asker = Asker(client, prompt, admin_token, retries)

        async def pair(index: int, case: GoldenCase) -> tuple[Answer, Answer]:
            async with gate:
                # Alternate who goes first, so warm caches favour neither arm.
                if index % 2 == 0:
                    first = await asker.ask(candidate, case)
                    return first, await asker.ask(baseline, case)
                second = await asker.ask(baseline, case)
                return await asker.ask(candidate, case), second

        tasks = [asyncio.ensure_future(pair(i, c)) for i, c in enumerate(cases)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
