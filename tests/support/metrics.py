"""Read a Prometheus text exposition in tests: sample values by name and label subset."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    """One exposed sample: full name (`..._total`, `..._sum`), labels and value."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Metrics:
    """A parsed `/metrics` page, with the raw text kept for linters such as promtool."""

    text: str
    samples: list[Sample]

    def select(self, name: str, **labels: str) -> list[Sample]:
        """Samples called `name` whose labels include every `labels` item."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the matching samples; 0 when none is exposed (a counter not yet touched)."""
        return sum(s.value for s in self.select(name, **labels))

    def names(self) -> set[str]:
        """Every sample name on the page."""
        return {s.name for s in self.samples}


def parse_metrics(text: str) -> Metrics:
    """Parse Prometheus text format (raises ValueError on malformed input)."""
    samples = [
        Sample(name=s.name, labels=dict(s.labels), value=float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    return Metrics(text=text, samples=samples)


def scrape(client: httpx.Client, base_url: str = "") -> Metrics:
    """GET `/metrics` (relative to the client's base URL unless `base_url` is given)."""
    response = client.get(f"{base_url}/metrics")
    response.raise_for_status()
    return parse_metrics(response.text)
