"""Check a running service against the service contract (docs/service-contract.md), item by item.

It sends a few real requests (two answers, a rating, a pin without the token, a pinned answer
when an admin token is given), then reads `/metrics`: the contract's families, and every
selector of the rollout policy (but the router's failures), must be exposed with their kind and
labels. Each item passes, fails with one sentence saying why, or is skipped when it needs what
was not given.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from contract import http
from contract.metrics import BASE_LABELS, FAMILIES, ROUTER_FAILURES, Family
from contract.tracks import TRACKS
from scripts.toolkit.metrics import Selector
from scripts.toolkit.policy import Policy

QUESTION = "What does the service contract ask of a service?"
USER = "check-service"


@dataclass(frozen=True)
class Item:
    """One contract item's result: `pass`, `fail` (with a one-sentence reason) or `skip`."""

    id: str
    result: str
    reason: str = ""


class Failed(Exception):
    """An item fails; the message, one sentence, is its reason."""


def _field(body: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(body, dict) or key not in body:
            raise Failed(f"the body lacks `{path}`.")
        body = body[key]
    return body


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise Failed(f"{response.request.url.path} answered HTTP {response.status_code}, not 200.")
    return response


def _json(response: httpx.Response) -> Any:
    try:
        return _ok(response).json()
    except ValueError:
        raise Failed(f"{response.request.url.path} did not answer JSON.") from None


def _series(families: dict[str, Any], selector: Selector) -> tuple[str, list[dict[str, str]]]:
    """The `# TYPE` of the family a selector names, and the label sets of its series."""
    name = selector.name
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    found = next((f for f in families.values() if name in {f.name + s for s in suffixes}), None)
    if found is None:
        raise Failed(f"/metrics has no family `{name}`.")
    labels = [dict(s.labels) for s in found.samples if s.name in (name, name + "_bucket")]
    if not labels:
        raise Failed(f"`{name}` has no series after the requests this check sent.")
    return str(found.type), labels


def _labelled(labels: list[dict[str, str]], name: str, wanted: tuple[str, ...]) -> None:
    for series in labels:
        if missing := [label for label in wanted if not series.get(label)]:
            raise Failed(f"a series of `{name}` lacks the label {', '.join(missing)}.")


class Checker:
    """Runs the items in order over one client; later items read what earlier ones found."""

    def __init__(self, client: httpx.Client, *, admin_token: str | None) -> None:
        self.client = client
        self.admin_token = admin_token
        self.found: dict[str, Any] = {}
        self.items: list[Item] = []

    def run(self, item_id: str, check: Callable[[], str | None]) -> None:
        """Record `check`'s result; it returns a reason to skip, or None when it passed."""
        try:
            skipped = check()
        except Failed as exc:
            self.items.append(Item(item_id, "fail", str(exc)))
        except httpx.HTTPError as exc:
            reason = f"no answer from the service ({exc.__class__.__name__})."
            self.items.append(Item(item_id, "fail", reason))
        else:
            self.items.append(Item(item_id, "skip" if skipped else "pass", skipped or ""))

    def need(self, key: str) -> Any:
        """What an earlier item found; the item fails when that one did."""
        if key not in self.found:
            raise Failed(f"not checked: the {key} item failed.")
        return self.found[key]

    def answer(self, user: str = USER, headers: dict[str, str] | None = None) -> Any:
        """A real answer, with every field the toolkit reads."""
        payload = {"question": QUESTION, "user_id": user}
        body = _json(self.client.post(http.ANSWER_PATH, json=payload, headers=headers))
        for path in http.ANSWER_FIELDS:
            _field(body, path)
        return body

    def health(self, path: str) -> None:
        """A probe path that answers 200."""
        _ok(self.client.get(path))

    def version(self) -> None:
        """`/version` names the build, a known track and the loaded registry."""
        body = _json(self.client.get(http.VERSION_PATH))
        for name in http.VERSION_FIELDS:
            _field(body, name)
        if body[http.VERSION_TRACK] not in TRACKS:
            raise Failed(f"track {body[http.VERSION_TRACK]!r} is none of {', '.join(TRACKS)}.")
        self.found["version"] = body

    def registry(self) -> None:
        """Every prompt lists exactly one production version."""
        prompts = _field(self.need("version"), f"{http.VERSION_REGISTRY}.prompts")
        if not isinstance(prompts, dict) or not prompts:
            raise Failed("`registry.prompts` names no prompt.")
        for name, versions in prompts.items():
            if [v.get("status") for v in versions].count("production") != 1:
                raise Failed(f"prompt {name} does not list exactly one production version.")

    def first_answer(self) -> None:
        """An answer with the fields the toolkit reads."""
        self.found["answer"] = self.answer()

    def sticky(self) -> None:
        """The same user gets the same prompt version again."""
        first = self.need("answer")["prompt"]["version"]
        if (again := self.answer()["prompt"]["version"]) != first:
            raise Failed(f"the same user got prompt version {first}, then {again}.")

    def feedback(self) -> None:
        """A rating of the first answer is accepted."""
        body = {**http.feedback_reference(self.need("answer")), "rating": "down"}
        response = self.client.post(http.FEEDBACK_PATH, json=body)
        if not response.is_success:
            raise Failed(f"{http.FEEDBACK_PATH} answered HTTP {response.status_code}.")

    def pin_refused(self) -> None:
        """A pin without the admin token is refused."""
        pin = {http.PIN_PROMPT_VERSION_HEADER: self.need("answer")["prompt"]["version"]}
        response = self.client.post(http.ANSWER_PATH, json={"question": QUESTION}, headers=pin)
        if response.status_code not in (401, 403):
            raise Failed(f"a pin without the token got HTTP {response.status_code}, not 401/403.")

    def pin_served(self) -> str | None:
        """With the admin token, the pinned prompt version answers."""
        if not self.admin_token:
            return "needs --admin-token (or ROLLOUT_ADMIN_TOKEN)."
        pinned = self.need("answer")["prompt"]["version"]
        headers = {
            http.PIN_PROMPT_VERSION_HEADER: pinned,
            http.ADMIN_TOKEN_HEADER: self.admin_token,
        }
        if (served := self.answer(f"{USER}-pinned", headers)["prompt"]["version"]) != pinned:
            raise Failed(f"pinned to {pinned}, the service answered with {served}.")
        return None

    def exposition(self) -> None:
        """`/metrics` is Prometheus text format."""
        text = _ok(self.client.get(http.METRICS_PATH)).text
        try:
            self.found["metrics"] = {f.name: f for f in text_string_to_metric_families(text)}
        except ValueError as exc:
            raise Failed(f"{http.METRICS_PATH} is not Prometheus text format ({exc}).") from None

    def family(self, spec: Family) -> None:
        """A contract family: its kind, its labels, and the identity `/version` reports."""
        kind, labels = _series(self.need("metrics"), Selector(spec.name))
        if kind != spec.kind:
            raise Failed(f"`{spec.name}` is a {kind}, not a {spec.kind}.")
        _labelled(labels, spec.name, spec.labels)
        version = self.need("version")
        identity = {label: str(version[label]) for label in BASE_LABELS}
        if any(series.get(k) != v for series in labels for k, v in identity.items()):
            raise Failed(f"`{spec.name}` has track/app_version labels other than {identity}.")

    def selectors(self, texts: list[str]) -> None:
        """A policy metric: each selector names a family with the track labels and the labels
        (or histogram bound) it matches on."""
        for text in texts:
            selector = Selector.parse(text)
            _, labels = _series(self.need("metrics"), selector)
            matched = tuple(label for label, _, _ in selector.matchers if label != "le")
            _labelled(labels, selector.name, BASE_LABELS + matched)
            bounds = {v for label, _, v in selector.matchers if label == "le"}
            if missing := bounds - {series.get("le") for series in labels}:
                raise Failed(f'`{selector.name}` has no bucket le="{missing.pop()}".')


def check_service(
    url: str, *, policy: Policy, admin_token: str | None, timeout: float
) -> list[Item]:
    """Every contract item of the service at `url`, in the order docs/service-contract.md has
    them. A service that does not answer at all fails `health.live` and nothing else runs."""
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout) as client:
        try:
            client.get(http.HEALTH_PATH)
        except httpx.HTTPError as exc:
            return [
                Item("health.live", "fail", f"no answer from {url} ({exc.__class__.__name__}).")
            ]
        checker = Checker(client, admin_token=admin_token)
        run = checker.run
        run("health.live", functools.partial(checker.health, http.HEALTH_PATH))
        run("health.ready", functools.partial(checker.health, http.READY_PATH))
        run("version.fields", checker.version)
        run("version.registry", checker.registry)
        run("answer.fields", checker.first_answer)
        run("answer.sticky", checker.sticky)
        run("feedback.accepted", checker.feedback)
        run("pin.refused", checker.pin_refused)
        run("pin.served", checker.pin_served)
        run("metrics.exposition", checker.exposition)
        for spec in FAMILIES:
            run(f"metrics.{spec.name}", functools.partial(checker.family, spec))
        for metric in policy.metrics:
            named = (metric.hits, metric.good, metric.total, metric.histogram)
            texts = [t for s in named if s for t in ([s] if isinstance(s, str) else s)]
            texts = [t for t in texts if Selector.parse(t).name != ROUTER_FAILURES]
            run(f"policy.{metric.name}", functools.partial(checker.selectors, texts))
    return checker.items
