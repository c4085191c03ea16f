"""`ScrapeSource`: each arm's `/metrics` read directly, cumulative across process restarts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from scripts.toolkit.metrics.exposition import Sample, observe, parse_exposition
from scripts.toolkit.metrics.observations import ArmData, Histogram, Observation, Ratio
from scripts.toolkit.metrics.source import Arm, MetricQuery, MetricsUnavailable, one_sentence


@dataclass
class _Counted:
    """What ScrapeSource remembers of one series group at one URL."""

    baseline: Observation  # the first reading of this process's lifetime (zero after a reset)
    last: Observation  # the latest reading
    carried: Observation  # counted in earlier lifetimes of the process (before resets)


@dataclass
class ScrapeSource:
    """Reads each arm's `/metrics` URLs directly: counts since each process started.

    An arm's series are selected by its labels on every URL it names and summed. Each URL (one
    process) is followed on its own: when its counters go down since the last reading, the
    process restarted, so what it had counted until then is kept and its new counts are added
    from zero; the observation stays cumulative over the whole analysis."""

    timeout: float = 5.0
    _counted: dict[tuple[str, str, str], _Counted] = field(default_factory=dict)
    resets: list[str] = field(default_factory=list)

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Observations per arm, each summed over the arm's URLs; MetricsUnavailable if a URL
        fails (then nothing is remembered from this read)."""
        queries, arms = list(queries), list(arms)
        pages: dict[str, list[Sample]] = {}
        with httpx.Client(timeout=self.timeout) as client:
            for arm in arms:
                for url in arm.urls:
                    if url not in pages:
                        pages[url] = _fetch(client, url, arm.name)
        result: dict[str, ArmData] = {}
        for arm in arms:
            data: ArmData = {}
            for query in queries:
                observation = observe([], query, arm.labels)  # nothing, if the arm has no URL
                for url in arm.urls:
                    current = observe(pages[url], query, arm.labels)
                    since = self._counted_at((arm.name, url, query.name), current)
                    observation = _plus(observation, since)
                data[query.name] = observation
            result[arm.name] = data
        return result

    def export_state(self) -> dict[str, Any]:
        """What it remembers, JSON-ready: saved by the monitor so a resumed run keeps the counts
        from before the interruption."""
        return {
            "counted": [
                {
                    "key": list(key),
                    **{f: _dump(getattr(c, f)) for f in ("baseline", "last", "carried")},
                }
                for key, c in self._counted.items()
            ],
            "resets": list(self.resets),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `export_state` saved; a process restarted meanwhile is noticed as a
        reset on the next read, as usual."""
        try:
            self._counted = {
                (e["key"][0], e["key"][1], e["key"][2]): _Counted(
                    baseline=_load(e["baseline"]),
                    last=_load(e["last"]),
                    carried=_load(e["carried"]),
                )
                for e in state.get("counted", [])
            }
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"the saved scrape state cannot be read: {exc}") from exc
        self.resets = list(state.get("resets", []))

    def _counted_at(self, key: tuple[str, str, str], current: Observation) -> Observation:
        counted = self._counted.get(key)
        if counted is None:
            # First reading: the counters as they are, since the process started (a canary's
            # since it was deployed), so a monitor started late still counts what was served.
            zero = _minus(current, current)
            self._counted[key] = _Counted(baseline=zero, last=current, carried=zero)
            return current
        if _is_reset(current, counted.last):
            self.resets.append(f"{key[0]}/{key[2]}")
            counted.carried = _plus(counted.carried, _minus(counted.last, counted.baseline))
            counted.baseline = _minus(current, current)
        counted.last = current
        return _plus(counted.carried, _minus(current, counted.baseline))


def _fetch(client: httpx.Client, url: str, arm: str) -> list[Sample]:
    try:
        response = client.get(url)
        response.raise_for_status()
        return parse_exposition(response.text)
    except (httpx.HTTPError, ValueError) as exc:
        raise MetricsUnavailable(
            f"cannot read {arm} metrics at {url}: {one_sentence(exc)}", exit_code=3
        ) from exc


def _dump(observation: Observation) -> dict[str, Any]:
    if isinstance(observation, Ratio):
        return {"kind": "ratio", "hits": observation.hits, "total": observation.total}
    return {
        "kind": "histogram",
        "bounds": list(observation.bounds),
        "counts": list(observation.counts),
        "total": observation.total,
    }


def _load(data: dict[str, Any]) -> Observation:
    if data["kind"] == "ratio":
        return Ratio(float(data["hits"]), float(data["total"]))
    return Histogram(
        tuple(float(b) for b in data["bounds"]),
        tuple(float(c) for c in data["counts"]),
        float(data["total"]),
    )


def _same_kind(a: Observation, b: Observation, operation: str) -> Any:
    """`a.<operation>(b)` when both are of one kind (Ratio or Histogram)."""
    if type(a) is not type(b):
        raise TypeError("observations of different kinds")
    return getattr(a, operation)(b)


def _minus(a: Observation, b: Observation) -> Observation:
    return cast(Observation, _same_kind(a, b, "minus"))


def _plus(a: Observation, b: Observation) -> Observation:
    return cast(Observation, _same_kind(a, b, "plus"))


def _is_reset(current: Observation, last: Observation) -> bool:
    return bool(_same_kind(current, last, "is_reset_from"))
