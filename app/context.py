"""The service context: what request handlers share, and the readiness probe."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.core.config import Settings
from app.core.metrics import ServiceMetrics
from app.db.writer import DatabaseWriter
from app.feedback import FeedbackTokens
from app.knowledge.retrieval import Retriever
from app.providers.base import ChatCall, Provider, ProviderError
from app.registry.store import RegistryStore, ReloadResult
from contract.metrics import Variant
from contract.registry.loader import PromptSet, Registry
from contract.registry.schema import PromptVersion

V = TypeVar("V")


class Recent(Generic[V]):
    """A bounded map of recent keys: the oldest is forgotten beyond `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, V] = OrderedDict()

    def remember(self, key: str, value: V) -> None:
        """Record `value` for `key`, as the newest entry."""
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def lookup(self, key: str) -> V | None:
        """The value of `key`, if it is still remembered."""
        return self._items.get(key)


class FeedbackLog(Recent[Variant]):
    """Which variant served each recent request id, so feedback is counted for the right one."""


class RecentKeys(Recent[None]):
    """Keys seen lately, each reported new once (within the window)."""

    def first_seen(self, key: str) -> bool:
        """True the first time `key` is seen (within the window)."""
        new = key not in self._items
        self.remember(key, None)
        return new


class RecentUnits(RecentKeys):
    """Users (or sessions) seen lately, to count each once per variant for the sample-ratio check.

    Bounded: a unit forgotten and seen again counts again, equally often in every variant, so
    the ratio between variants stays unbiased."""


class RatedRequests(RecentKeys):
    """Request ids rated lately on this instance, so a repeated rating is not counted twice."""


@dataclass
class Readiness:
    """Result of the last real model call made for `/readyz`, reused for `cache_seconds`."""

    cache_seconds: float
    checked_at: float = 0.0
    ok: bool = False
    checks: dict[str, str] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class ServiceContext:
    """Everything the routes share; built once by the app's lifespan."""

    settings: Settings
    metrics: ServiceMetrics
    store: RegistryStore
    retriever: Retriever
    provider: Provider
    feedback: FeedbackLog
    readiness: Readiness
    units: RecentUnits
    tokens: FeedbackTokens
    rated: RatedRequests
    database: DatabaseWriter
    draining: bool = False

    @property
    def registry(self) -> Registry:
        """The registry serving right now."""
        return self.store.current

    async def probe(self) -> tuple[bool, dict[str, str]]:
        """Ready when not draining and every active prompt version answers a real model call."""
        if self.draining:
            return False, {"service": "draining"}
        r = self.readiness
        async with r.lock:
            if time.monotonic() - r.checked_at >= r.cache_seconds or not r.ok:
                r.ok, r.checks = await self._call_models()
                r.checked_at = time.monotonic()
        self.metrics.ready.labels(*self.metrics.base).set(1 if r.ok else 0)
        # The database is reported, never decisive: answers do not need it (rows wait in the
        # queue), and an outage must not take every pod out of rotation at once.
        return r.ok, {**r.checks, **self.database_checks()}

    def database_checks(self) -> dict[str, str]:
        """`database` (ok, or degraded and why) and, after a failed migration, `migration`."""
        checks = {"database": self.database.status}
        if self.database.migration != "ok":
            checks["database_migration"] = self.database.migration
        return checks

    async def _call_models(self) -> tuple[bool, dict[str, str]]:
        registry = self.registry
        checks: dict[str, str] = {}
        for prompt_set in registry.prompts.values():
            for version in prompt_set.active():
                model = registry.model_for(version)
                params = version.parameters.merged_over(model.parameters)
                call = ChatCall(
                    model=model.provider_model,
                    messages=version.render(question="ping", context=""),
                    max_tokens=1,
                    extra_body=params.extra_body,
                )
                key = f"{version.name}@{version.version}"
                try:
                    await self.provider.complete(call)
                    checks[key] = "ok"
                except ProviderError as exc:
                    checks[key] = exc.message
        return all(v == "ok" for v in checks.values()), checks

    def record_registry(self, result: ReloadResult, registry: Registry) -> None:
        """Export the reload outcome and the loaded versions' traffic shares as metrics."""
        m = self.metrics
        m.registry_reloads.labels(*m.base, result.outcome).inc()
        export_registry(m, registry)


def traffic_share(prompt_set: PromptSet, version: PromptVersion) -> float:
    """The share of users (0..1) `version` serves: production gets what the canary does not."""
    canary_share = prompt_set.canary.traffic_percentage / 100 if prompt_set.canary else 0.0
    return {"production": 1 - canary_share, "canary": canary_share}.get(version.status, 0.0)


def registry_summary(registry: Registry) -> dict[str, Any]:
    """`Registry.summary()` with each version's real share as `traffic_percentage`.

    The files give production no percentage (it serves the rest); readers want the rest."""
    summary = registry.summary()
    for name, versions in summary["prompts"].items():
        prompt_set = registry.prompts[name]
        for entry in versions:
            share = traffic_share(prompt_set, prompt_set.versions[entry["version"]])
            entry["traffic_percentage"] = round(share * 100, 6)
    return summary


def export_registry(metrics: ServiceMetrics, registry: Registry) -> None:
    """Set `app_registry_traffic_ratio` for every loaded prompt version, replacing old series."""
    metrics.registry_traffic.clear()
    for prompt_set in registry.prompts.values():
        for version in prompt_set.versions.values():
            metrics.registry_traffic.labels(
                *metrics.base,
                version.name,
                version.version,
                version.model_name,
                version.model_version,
                version.status,
            ).set(traffic_share(prompt_set, version))
