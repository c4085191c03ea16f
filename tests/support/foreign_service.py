"""A foreign service that honours docs/service-contract.md: aiohttp, not FastAPI, and nothing of
`app/` — only `contract/` and third-party libraries. Its answers are canned (with a quality
score and cost that vary by question); it serves prompt variants from the registry folder,
reloads it when it changes, and drains on SIGTERM.

`python -m tests.support.foreign_service` reads the `APP_*` settings the toolkit passes.
`FOREIGN_DROP_LABEL=track` leaves that label off every metric: a service that breaks the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from contract import http
from contract import metrics as names
from contract import settings as env
from contract.metrics import FAMILIES, Family, Variant
from contract.registry.loader import Registry, RegistryError, folder_digest, load_registry
from contract.registry.writing import writer_active

BUCKETS = {names.ANSWER_DURATION: names.LATENCY_BUCKETS, names.QUALITY_SCORE: names.SCORE_BUCKETS}


class Foreign:
    """The service's state: identity, registry, metrics, the answers feedback may name."""

    def __init__(self) -> None:
        self.track, self.app_version = os.environ[env.TRACK], os.environ.get(env.VERSION, "dev")
        self.root = Path(os.environ[env.REGISTRY_DIR])
        self.registry: Registry = load_registry(self.root)
        self.draining = False
        self.answers: OrderedDict[str, Variant] = OrderedDict()  # request id -> who answered
        self.units: set[tuple[str, Variant]] = set()
        self.metrics = CollectorRegistry()
        self.drop = os.environ.get("FOREIGN_DROP_LABEL")
        self.families = {f.name: self._family(f) for f in FAMILIES}

    def _family(self, family: Family) -> Counter | Histogram:
        labels = [label for label in family.labels if label != self.drop]
        help_text = f"{family.name} of the foreign service."
        if family.kind == "counter":
            return Counter(names.family(family.name), help_text, labels, registry=self.metrics)
        buckets = BUCKETS.get(family.name, names.COST_BUCKETS)
        return Histogram(family.name, help_text, labels, buckets=buckets, registry=self.metrics)

    def record(self, name: str, variant: Variant, value: float = 1.0, **extra: str) -> None:
        """Count or observe one event of `variant` in family `name`."""
        labels = {k: v for k, v in {**variant.labels(), **extra}.items() if k != self.drop}
        metric = self.families[name].labels(**labels)
        if isinstance(metric, Counter):
            metric.inc(value)
        else:
            metric.observe(value)

    async def reload_forever(self, every: float) -> None:
        """Load the registry again when its files change (never while a writer holds it)."""
        while True:
            await asyncio.sleep(every)
            if not writer_active(self.root) and folder_digest(self.root) != self.registry.digest:
                with contextlib.suppress(RegistryError):  # keep serving the last good one
                    self.registry = load_registry(self.root)

    async def answer(self, request: web.Request) -> web.Response:
        started, body = time.perf_counter(), await request.json()
        request_id = uuid.uuid4().hex
        prompts = self.registry.prompts[body.get("prompt") or next(iter(self.registry.prompts))]
        pin = request.headers.get(http.PIN_PROMPT_VERSION_HEADER)
        if pin is not None:
            if request.headers.get(http.ADMIN_TOKEN_HEADER) != os.environ.get(env.ADMIN_TOKEN):
                raise web.HTTPForbidden(text="Pinning needs the admin token.")
            if pin not in prompts.versions:
                raise web.HTTPNotFound(text="Unknown prompt version.")
            prompt = prompts.versions[pin]
        else:
            prompt = prompts.assign(body.get("user_id") or body.get("session_id") or request_id)
        variant = Variant(
            self.track,
            self.app_version,
            prompt.name,
            prompt.version,
            prompt.model_name,
            prompt.model_version,
        )
        digest = hashlib.sha256(body["question"].encode()).digest()
        score, cost = 0.6 + digest[0] / 1000, 1e-5 * (1 + digest[1] / 255)
        self.answers[request_id] = variant
        if len(self.answers) > 10_000:
            self.answers.popitem(last=False)
        if (unit := (body.get("user_id") or request_id, variant)) not in self.units:
            self.units.add(unit)
            self.record(names.EXPERIMENT_UNITS, variant)
        self.record(names.ANSWERS, variant, outcome="answered")
        self.record(names.QUALITY_SCORE, variant, score)
        self.record(names.ANSWER_COST, variant, cost)
        self.record(names.ANSWER_DURATION, variant, time.perf_counter() - started)
        return web.json_response({
            "request_id": request_id, "answer": "A canned answer [1].",
            "citations": [{"number": 1, "document_id": "canned", "title": "Canned"}],
            "prompt": {"name": prompt.name, "version": prompt.version},
            "model": {"name": prompt.model_name, "version": prompt.model_version},
            "quality": {"score": score, "groundedness": score, "refused": False},
            "usage": {"estimated_cost_usd": cost},
        })  # fmt: skip

    async def feedback(self, request: web.Request) -> web.Response:
        body = await request.json()
        variant = self.answers.get(body.get("request_id", ""))
        if variant is None or body.get("rating") not in names.RATINGS:
            raise web.HTTPNotFound(text="Unknown request_id or rating.")
        self.record(names.FEEDBACK, variant, rating=body["rating"])
        return web.json_response({"status": "recorded"}, status=202)

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, _: web.Request) -> web.Response:
        return web.json_response({"ready": not self.draining}, status=503 if self.draining else 200)

    async def version(self, _: web.Request) -> web.Response:
        return web.json_response({
            http.VERSION_APP_VERSION: self.app_version,
            http.VERSION_GIT_SHA: os.environ.get(env.GIT_SHA, ""),
            http.VERSION_TRACK: self.track, http.VERSION_REGISTRY: self.registry.summary(),
        })  # fmt: skip

    async def metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics), content_type="text/plain")


async def serve() -> None:
    """Serve until SIGTERM, then report not ready for APP_DRAIN_SECONDS and stop."""
    service, stop = Foreign(), asyncio.Event()
    app = web.Application()
    app.router.add_post(http.ANSWER_PATH, service.answer)
    app.router.add_post(http.FEEDBACK_PATH, service.feedback)
    app.router.add_get(http.HEALTH_PATH, service.health)
    app.router.add_get(http.READY_PATH, service.ready)
    app.router.add_get(http.VERSION_PATH, service.version)
    app.router.add_get(http.METRICS_PATH, service.metrics_page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(
        runner, os.environ.get(env.HOST, "127.0.0.1"), int(os.environ[env.PORT])
    ).start()
    reloader = asyncio.create_task(
        service.reload_forever(float(os.environ.get(env.REGISTRY_RELOAD_SECONDS, "1")))
    )

    def drain() -> None:
        service.draining = True
        asyncio.get_running_loop().call_later(
            float(os.environ.get(env.DRAIN_SECONDS, "0")), stop.set
        )

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, drain)
    await stop.wait()
    reloader.cancel()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
