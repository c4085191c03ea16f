"""`ScrapeSource`: each arm's `/metrics` read directly, cumulative across process restarts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from contract.metrics import PROCESS_START
from scripts.toolkit.metrics.exposition import Sample, observe, parse_exposition
from scripts.toolkit.metrics.observations import ArmData, Observation, Ratio, observation_from
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
    process) is followed on its own: when any series it counted goes down or disappears, or its
    `process_start_time_seconds` changes (a new process may have passed the old counts by the
    next reading), the process restarted, so what it had counted until then is kept and its new
    counts are added from zero; the observation stays cumulative over the whole analysis. A URL
    that refuses the connection (a crashed process) keeps what it counted while others answer."""

    timeout: float = 5.0
    _counted: dict[tuple[str, str, str], _Counted] = field(default_factory=dict)
    # Per URL: the process's start time and every series the queries read, at the last reading.
    _seen: dict[str, tuple[float | None, dict[str, float]]] = field(default_factory=dict)
    resets: list[str] = field(default_factory=list)

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Observations per arm, each summed over the arm's URLs; MetricsUnavailable if a URL
        fails otherwise or none answers (then nothing is remembered from this read)."""
        queries, arms = list(queries), list(arms)
        pages: dict[str, list[Sample] | None] = {}
        with httpx.Client(timeout=self.timeout) as client:
            for arm in arms:
                for url in arm.urls:
                    if url not in pages:
                        pages[url] = _fetch(client, url, arm.name)
        if pages and all(page is None for page in pages.values()):
            refused = ", ".join(pages)
            raise MetricsUnavailable(
                f"every metrics page refuses connections: {refused}", exit_code=3
            )
        names = {n for q in queries for n in _sample_names(q)}
        restarted = {
            u for u, page in pages.items() if page is not None and self._restarted(u, page, names)
        }
        result: dict[str, ArmData] = {}
        for arm in arms:
            data: ArmData = {}
            for query in queries:
                observation = observe([], query, arm.labels)  # nothing, if the arm has no URL
                for url in arm.urls:
                    key, page = (arm.name, url, query.name), pages[url]
                    current = observe(page or [], query, arm.labels)
                    since = self._counted_at(
                        key, current, gone=page is None, restart=url in restarted
                    )
                    observation = _plus(observation, since)
                data[query.name] = observation
            result[arm.name] = data
        return result

    def _restarted(self, url: str, page: list[Sample], names: set[str]) -> bool:
        start = next((v for n, _, v in page if n == PROCESS_START), None)
        series = _counters(page, names)
        before, self._seen[url] = self._seen.get(url), (start, series)
        if before is None:
            return False
        moved = None not in (start, before[0]) and start != before[0]
        return moved or any(series.get(k, 0.0) < v for k, v in before[1].items())

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
            "seen": self._seen,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `export_state` saved; a process restarted meanwhile is noticed as a
        reset on the next read, as usual."""
        try:
            self._counted = {
                (e["key"][0], e["key"][1], e["key"][2]): _Counted(
                    *(observation_from(e[f]) for f in ("baseline", "last", "carried"))
                )
                for e in state.get("counted", [])
            }
            self._seen = {u: (s[0], dict(s[1])) for u, s in state.get("seen", {}).items()}
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"the saved scrape state cannot be read: {exc}") from exc
        self.resets = list(state.get("resets", []))

    def _counted_at(
        self, key: tuple[str, str, str], current: Observation, *, gone: bool, restart: bool
    ) -> Observation:
        counted = self._counted.get(key)
        if counted is None:
            # First reading: the counters as they are, since the process started (a canary's
            # since it was deployed), so a monitor started late still counts what was served.
            zero = _minus(current, current)
            self._counted[key] = _Counted(baseline=zero, last=current, carried=zero)
            return current
        if gone:  # the process refuses connections: what it counted until then
            current = counted.last
        elif restart:
            self.resets.append(f"{key[0]}/{key[2]}")
            counted.carried = _plus(counted.carried, _minus(counted.last, counted.baseline))
            counted.baseline = _minus(current, current)
        counted.last = current
        return _plus(counted.carried, _minus(current, counted.baseline))


def _fetch(client: httpx.Client, url: str, arm: str) -> list[Sample] | None:
    """The page's samples; None when the connection is refused (no process listens)."""
    try:
        response = client.get(url)
        response.raise_for_status()
        return parse_exposition(response.text)
    except httpx.ConnectError:
        return None
    except (httpx.HTTPError, ValueError) as exc:
        raise MetricsUnavailable(
            f"cannot read {arm} metrics at {url}: {one_sentence(exc)}", exit_code=3
        ) from exc


def _dump(observation: Observation) -> dict[str, Any]:
    kind = "ratio" if isinstance(observation, Ratio) else "histogram"
    return {"kind": kind, **asdict(observation)}


def _minus(a: Observation, b: Observation) -> Observation:
    return a.minus(b)  # type: ignore[arg-type]  # one process's series keep their kind


def _plus(a: Observation, b: Observation) -> Observation:
    return a.plus(b)  # type: ignore[arg-type]


def _counters(page: list[Sample], names: set[str]) -> dict[str, float]:
    """The series named `names` by name and labels, a histogram's per bucket (not cumulative,
    so that a bucket emptied by a restart shows): in one process each only ever grows."""
    series: dict[str, float] = {}
    below: dict[str, float] = {}
    for name, labels, value in sorted(page, key=lambda s: float(s[1].get("le", 0))):
        if name in names:
            group = f"{name}{sorted((k, v) for k, v in labels.items() if k != 'le')}"
            series[group + labels.get("le", "")] = value - below.get(group, 0.0)
            if "le" in labels:
                below[group] = value
    return series


def _sample_names(query: MetricQuery) -> list[str]:
    """The sample names a query reads (a histogram's by its buckets: `+Inf` is its count)."""
    if query.kind == "ratio":
        total, part, _ = query.ratio_parts()
        return [s.name for s in (*total, *part)]
    return [query.histogram_selector().name + "_bucket"]
