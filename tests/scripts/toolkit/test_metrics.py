"""Metric observations: selectors, reading a real /metrics page, counter resets, and Prometheus.

Unit tests read expositions produced by the service's own metric set (`app.core.metrics`),
served from a tiny in-process HTTP server; integration tests read a running app and a real
Prometheus scraping it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from app.core.metrics import SCORE_BUCKETS, ServiceMetrics
from contract.metrics import PROCESS_START
from scripts.toolkit.cli import EXIT_INCONCLUSIVE
from scripts.toolkit.metrics import (
    Arm,
    Histogram,
    MetricQuery,
    MetricsUnavailable,
    Observation,
    PrometheusSource,
    Ratio,
    ScrapeSource,
    Selector,
    observe,
    parse_exposition,
)
from scripts.toolkit.platform.router_metrics import RouterMetrics
from scripts.toolkit.policy import DEFAULT_POLICY, load_policy
from scripts.toolkit.processes import ManagedProcess, free_port
from scripts.toolkit.prometheus_server import prometheus_binary, start_prometheus, write_targets
from scripts.toolkit.targets import CodeTarget
from scripts.toolkit.traffic.base import TrafficState
from tests.support.metrics import Metrics, parse_metrics
from tests.support.polling import poll_until
from tests.support.registry import golden_rows
from tests.support.service import StartApp

QUERIES = [m.query() for m in load_policy(DEFAULT_POLICY).metrics]
STABLE = {"track": "stable"}
VARIANT = ("rag_answer", "v1", "extractive-base", "v2026-01")

# --- selectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "matchers"),
    [
        ("app_answers_total", "app_answers_total", ()),
        ("app_answers_total{}", "app_answers_total", ()),
        ("  ns:rule_total  ", "ns:rule_total", ()),
        (
            'app_answers_total{outcome="error"}',
            "app_answers_total",
            (("outcome", "=", "error"),),
        ),
        (
            'm{a="1", b!="2",c=~"x|y" , d!~"z.*",}',
            "m",
            (("a", "=", "1"), ("b", "!=", "2"), ("c", "=~", "x|y"), ("d", "!~", "z.*")),
        ),
        ('m{ a = "" }', "m", (("a", "=", ""),)),
        (
            'm{a="say \\"hi\\"", b="back\\\\slash"}',
            "m",
            (("a", "=", 'say "hi"'), ("b", "=", "back\\slash")),
        ),
        ('m{le="0.5"}', "m", (("le", "=", "0.5"),)),
    ],
)
def test_selector_parse(text: str, name: str, matchers: tuple[tuple[str, str, str], ...]) -> None:
    selector = Selector.parse(text)
    assert selector.name == name
    assert selector.matchers == matchers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a series selector"),
        ("1metric", "not a series selector"),
        ("rate(m[5m])", "not a series selector"),
        ('m{a="b"', "not a series selector"),
        ("m{a=b}", "cannot read the label matchers"),
        ('m{a~"b"}', "cannot read the label matchers"),
        ('m{1a="b"}', "cannot read the label matchers"),
        ('m{a="b" c="d"}', "expected ','"),
        ('m{a="b",,c="d"}', "cannot read the label matchers"),
        ('m{  a="b", c}', "cannot read the label matchers"),  # leading blanks hid this once
        ('m{a=~"(open"}', "bad regular expression"),
        ('m{a!~"*"}', "bad regular expression"),
    ],
)
def test_selector_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Selector.parse(text)


@pytest.mark.parametrize(
    ("text", "labels", "selected"),
    [
        ('m{a="1"}', {"a": "1", "b": "2"}, True),
        ('m{a="1"}', {"a": "2"}, False),
        ('m{a="1"}', {}, False),
        ('m{a=""}', {}, True),  # an absent label is the empty string, as in PromQL
        ('m{a!="1"}', {"a": "2"}, True),
        ('m{a!="1"}', {"a": "1"}, False),
        ('m{a!=""}', {}, False),
        ('m{a=~"err|fail"}', {"a": "err"}, True),
        ('m{a=~"err"}', {"a": "error"}, False),  # regexes are anchored at both ends
        ('m{a=~"err.*"}', {"a": "error"}, True),
        ('m{a!~"err.*"}', {"a": "error"}, False),
        ('m{a!~"err.*"}', {"a": "ok"}, True),
        ('m{a=~".*"}', {}, True),
        ('m{a="1", b="2"}', {"a": "1", "b": "3"}, False),
        ('m{a="x\\"y"}', {"a": 'x"y'}, True),
    ],
)
def test_selector_matches(text: str, labels: dict[str, str], selected: bool) -> None:
    assert Selector.parse(text).matches(labels) is selected


def test_selector_with_labels_adds_equality_matchers() -> None:
    selector = Selector.parse('app_answers_total{outcome="error"}').with_labels(
        {"track": "canary", "app_version": "abc"}
    )
    assert selector.matches({"outcome": "error", "track": "canary", "app_version": "abc"})
    assert not selector.matches({"outcome": "error", "track": "stable", "app_version": "abc"})


@pytest.mark.parametrize(
    "text", ["m", 'm{a="1",b!="2",c=~"x|y",d!~"z.*"}', 'm{a="say \\"hi\\"",b="c:\\\\d"}']
)
def test_promql_round_trips(text: str) -> None:
    selector = Selector.parse(text)
    assert Selector.parse(selector.promql()) == selector
    assert Selector.parse(selector.promql("_bucket")).name == "m_bucket"


def test_promql_text() -> None:
    selector = Selector.parse('app_quality_score{prompt=~"rag.*"}').with_labels(STABLE)
    assert selector.promql("_bucket") == 'app_quality_score_bucket{prompt=~"rag.*",track="stable"}'
    assert Selector.parse("m").promql() == "m{}"
    assert Selector("m", (("a", "=", 'x"y'),)).promql() == 'm{a="x\\"y"}'


# --- observations from the service's own exposition ------------------------------------------


class Process:
    """One app process's metric set, recording answers as `app.answering` does; its
    process_start_time_seconds is its own (the test's processes share one real process)."""

    started = itertools.count(1_700_000_000)

    def __init__(self, track: str = "stable") -> None:
        self.metrics = ServiceMetrics(track=track, app_version="v1", git_sha="abc")
        self.labels = (*self.metrics.base, *VARIANT)
        self.start = float(next(Process.started))

    def answer(self, *, seconds: float = 0.1, score: float = 0.9, cost: float = 1e-4) -> None:
        """A successful answer."""
        m = self.metrics
        m.answers.labels(*self.labels, "refused" if score == 0 else "answered").inc()
        m.answer_duration.labels(*self.labels).observe(seconds)
        m.cost.labels(*self.labels).observe(cost)
        m.quality.labels(*self.labels).observe(score)

    def error(self) -> None:
        """A failed answer."""
        self.metrics.answers.labels(*self.labels, "error").inc()

    def feedback(self, rating: str) -> None:
        """A user rating."""
        self.metrics.feedback.labels(*self.labels, rating).inc()

    def exposition(self) -> str:
        """The /metrics page."""
        page = generate_latest(self.metrics.registry).decode()
        return re.sub(rf"^{PROCESS_START} .*$", f"{PROCESS_START} {self.start}", page, flags=re.M)


def observe_all(process: Process, labels: dict[str, str] | None = None) -> dict[str, object]:
    """Every policy query observed on `process`'s page."""
    samples = parse_exposition(process.exposition())
    return {q.name: observe(samples, q, labels or STABLE) for q in QUERIES}


def test_observe_reads_ratios_and_histograms_from_the_exposition() -> None:
    process = Process()
    for seconds, score in [(0.1, 0.9), (0.7, 1.0), (0.3, 0.0), (2.0, 0.55), (0.5, 0.05)]:
        process.answer(seconds=seconds, score=score)
    process.error()
    process.feedback("down")
    process.feedback("up")
    process.feedback("up")
    data = observe_all(process)
    assert data["error_rate"] == Ratio(1, 6)
    # slow = total - answers in the le="0.5" bucket (0.5 itself is not slow)
    assert data["slow_answers"] == Ratio(2, 5)
    assert data["negative_feedback"] == Ratio(1, 3)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram)
    assert quality.bounds == (*SCORE_BUCKETS, math.inf)
    expected = [0.0] * (len(SCORE_BUCKETS) + 1)
    for score in (0.9, 1.0, 0.0, 0.55, 0.05):
        expected[next(i for i, b in enumerate(SCORE_BUCKETS) if score <= b)] += 1
    assert quality.counts == tuple(expected)
    assert quality.total == pytest.approx(2.5)
    assert quality.count == 5


def test_observe_keeps_to_the_arm_labels() -> None:
    process = Process(track="canary")
    process.answer()
    assert observe_all(process)["error_rate"] == Ratio(0, 0)
    assert observe_all(process, {"track": "canary"})["error_rate"] == Ratio(0, 1)
    empty = observe_all(process)["quality_score"]
    assert empty == Histogram((), (), 0.0)


# --- ScrapeSource on pages served in-process ----------------------------------------------


class Pages:
    """A small HTTP server on 127.0.0.1 serving `/<name>` from `processes[name]` (None: 500)."""

    def __init__(self) -> None:
        self.processes: dict[str, Process | None] = {}
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                process = pages.processes.get(self.path.lstrip("/"))
                body = process.exposition().encode() if process else b"down"
                self.send_response(200 if process else 500)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        """The URL of page `name`."""
        return f"http://127.0.0.1:{self.server.server_port}/{name}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[Pages]:
    """Pages served for the test, stopped afterwards."""
    served = Pages()
    yield served
    served.close()


def test_scrape_counts_since_the_process_started(pages: Pages) -> None:
    """A monitor started late counts what was served before its first reading (a canary whose
    weight was moved by hand has answers to judge at once)."""
    process = pages.processes["a"] = Process()
    for _ in range(5):
        process.answer()
    source, arms = ScrapeSource(), [Arm("stable", STABLE, (pages.url("a"),))]
    first = source.read(QUERIES, arms)["stable"]
    assert first["error_rate"] == Ratio(0, 5)
    assert isinstance(first["quality_score"], Histogram) and first["quality_score"].count == 5
    for _ in range(3):
        process.answer(score=0.0)
    process.error()
    data = source.read(QUERIES, arms)["stable"]
    assert data["error_rate"] == Ratio(1, 9)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram)
    assert quality.count == 8 and quality.counts[0] == 3 and quality.total == pytest.approx(4.5)
    assert source.resets == []


def test_scrape_sees_series_that_appear_after_the_first_reading(pages: Pages) -> None:
    process = pages.processes["a"] = Process()
    source, arms = ScrapeSource(), [Arm("stable", STABLE, (pages.url("a"),))]
    source.read(QUERIES, arms)  # nothing answered yet: no series at all
    process.answer(score=0.6)
    process.feedback("down")
    data = source.read(QUERIES, arms)["stable"]
    assert data["error_rate"] == Ratio(0, 1)
    assert data["negative_feedback"] == Ratio(1, 1)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram) and quality.count == 1 and quality.total == 0.6


def test_scrape_keeps_the_counts_of_a_process_that_restarted(pages: Pages) -> None:
    """A restart sets the counters back to zero: the source notices, records it, and adds the
    new process's counts to what the old one had counted."""
    old = pages.processes["a"] = Process()
    for _ in range(10):
        old.answer()
    source, arms = ScrapeSource(), [Arm("stable", STABLE, (pages.url("a"),))]
    source.read(QUERIES, arms)
    for _ in range(4):
        old.answer(seconds=0.9)
    old.error()
    assert source.read(QUERIES, arms)["stable"]["error_rate"] == Ratio(1, 15)

    new = pages.processes["a"] = Process()
    new.answer()
    new.error()
    data = source.read(QUERIES, arms)["stable"]
    assert data["error_rate"] == Ratio(2, 17)
    assert data["slow_answers"] == Ratio(4, 15)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram) and quality.count == 15
    assert "stable/error_rate" in source.resets
    assert "stable/quality_score" in source.resets

    new.answer()
    assert source.read(QUERIES, arms)["stable"]["error_rate"] == Ratio(2, 18)
    assert source.resets.count("stable/error_rate") == 1


def test_scrape_state_survives_an_interrupted_monitor(pages: Pages) -> None:
    """A resumed monitor restores what the source had counted: counts go on from the first
    reading of the first run, JSON round trip included, and a restart in between is seen."""
    process = pages.processes["a"] = Process()
    arms = [Arm("stable", STABLE, (pages.url("a"),))]
    first = ScrapeSource()
    first.read(QUERIES, arms)
    for _ in range(6):
        process.answer()
    process.error()
    assert first.read(QUERIES, arms)["stable"]["error_rate"] == Ratio(1, 7)
    saved = json.loads(json.dumps(first.export_state()))

    replacement = pages.processes["a"] = Process()  # restarted while nobody watched
    replacement.answer()
    resumed = ScrapeSource()
    resumed.restore(saved)
    data = resumed.read(QUERIES, arms)["stable"]
    assert data["error_rate"] == Ratio(1, 8)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram) and quality.count == 7
    assert "stable/error_rate" in resumed.resets
    with pytest.raises(ValueError, match="saved scrape state"):
        ScrapeSource().restore({"counted": [{"key": ["x"]}]})


def test_scrape_follows_each_replica_of_an_arm(pages: Pages) -> None:
    """Two replicas: one restarts while the other grows, so the arm's sum does not go down;
    the reset is still seen, per replica."""
    one, two = Process(), Process()
    pages.processes.update(one=one, two=two)
    for _ in range(50):
        one.answer()
        two.answer()
    source = ScrapeSource()
    arms = [Arm("stable", STABLE, (pages.url("one"), pages.url("two")))]
    source.read(QUERIES, arms)
    for _ in range(5):
        one.answer()
    assert source.read(QUERIES, arms)["stable"]["error_rate"] == Ratio(0, 105)
    pages.processes["one"] = restarted = Process()
    restarted.answer()
    for _ in range(60):
        two.answer()
    data = source.read(QUERIES, arms)["stable"]
    assert data["error_rate"] == Ratio(0, 55 + 1 + 110)
    assert source.resets == [f"stable/{q.name}" for q in QUERIES]


def test_scrape_sees_a_restart_by_the_start_time_when_the_new_process_passed_the_old(
    pages: Pages,
) -> None:
    """The measured defect: a restarted process whose counts passed the old ones by the next
    reading looked like one process, and 125 errors out of 3,100 read as 65 out of 1,100.
    process_start_time_seconds changed, so it is a restart, whatever the counts did."""
    old = pages.processes["a"] = Process()
    source, arms = ScrapeSource(), [Arm("stable", STABLE, (pages.url("a"),))]
    for _ in range(1950):
        old.answer()
    for _ in range(50):
        old.error()
    assert source.read(QUERIES, arms)["stable"]["error_rate"] == Ratio(50, 2000)
    new = pages.processes["a"] = Process()
    for _ in range(1025):
        new.answer()
    for _ in range(75):
        new.error()
    data = source.read(QUERIES, arms)["stable"]
    assert data["error_rate"] == Ratio(125, 3100)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram) and quality.count == 1950 + 1025
    assert min(quality.counts) >= 0
    assert "stable/error_rate" in source.resets


def test_scrape_sees_a_restart_by_a_series_that_went_down(pages: Pages) -> None:
    """Without a start time (a service that does not expose it), one series going down is a
    restart even when the arm's sums grew: no histogram bucket of -80."""
    old = pages.processes["a"] = Process()
    old.start = math.nan  # dropped from the page: parse_exposition keeps finite values only
    source, arms = ScrapeSource(), [Arm("stable", STABLE, (pages.url("a"),))]
    for _ in range(100):
        old.answer(score=0.9)
    source.read(QUERIES, arms)
    new = pages.processes["a"] = Process()
    new.start = math.nan
    for _ in range(20):
        new.answer(score=0.9)
    for _ in range(200):
        new.answer(score=0.5)
    quality = source.read(QUERIES, arms)["stable"]["quality_score"]
    assert isinstance(quality, Histogram)
    assert quality.count == 320 and min(quality.counts) >= 0
    assert source.resets


class RouterPage:
    """The router's /-/metrics page, served like a process's."""

    def __init__(self, metrics: RouterMetrics) -> None:
        self.metrics = metrics

    def exposition(self) -> str:
        return generate_latest(self.metrics.registry).decode()


def test_scrape_keeps_the_counts_of_a_process_that_refuses_connections() -> None:
    """A crashed canary refuses connections: its arm keeps what it counted while another page
    (the router's) answers, and the router's failures count as the canary's errors."""
    instance, router = Pages(), Pages()
    canary = instance.processes["metrics"] = Process("canary")
    failures = RouterMetrics()
    router.processes["metrics"] = RouterPage(failures)  # type: ignore[assignment]
    urls = (instance.url("metrics"), router.url("metrics"))
    arms = [Arm("canary", {"track": "canary", "app_version": "v1"}, urls)]
    source = ScrapeSource()
    try:
        for _ in range(8):
            canary.answer()
        canary.error()
        assert source.read(QUERIES, arms)["canary"]["error_rate"] == Ratio(1, 9)
        instance.close()  # the canary crashed: its port refuses connections
        failures.backend_errors.labels("canary", "v1", "refused").inc(6)
        failures.backend_errors.labels("canary", "older", "refused").inc(50)  # another canary
        data = source.read(QUERIES, arms)["canary"]
        assert data["error_rate"] == Ratio(1 + 6, 9 + 6)
        quality = data["quality_score"]
        assert isinstance(quality, Histogram) and quality.count == 8
    finally:
        router.close()


def test_scrape_failure_is_metrics_unavailable_and_changes_nothing(pages: Pages) -> None:
    process = pages.processes["a"] = Process()
    process.answer()
    pages.processes["b"] = None  # answers 500
    source = ScrapeSource()
    good, broken = Arm("stable", STABLE, (pages.url("a"),)), Arm("canary", {}, (pages.url("b"),))
    with pytest.raises(MetricsUnavailable) as caught:
        source.read(QUERIES, [good, broken])
    assert caught.value.exit_code == EXIT_INCONCLUSIVE
    assert "canary" in caught.value.message
    # The failed read remembered nothing: the next one counts from the process's start.
    process.answer()
    assert source.read(QUERIES, [good])["stable"]["error_rate"] == Ratio(0, 2)
    assert source.resets == []
    refused = Arm("stable", STABLE, (f"http://127.0.0.1:{free_port()}/metrics",))
    with pytest.raises(MetricsUnavailable, match="every metrics page refuses connections"):
        source.read(QUERIES, [refused])


class FixedBackend:
    """A traffic backend that only reports a fixed state (the arms need versions only)."""

    name = "fixed"

    def __init__(self, versions: dict[str, str]) -> None:
        self.traffic = TrafficState({"stable": 80.0, "canary": 20.0}, versions)

    def state(self) -> TrafficState:
        return self.traffic


def test_code_arms_read_every_instance_and_pick_series_by_track(pages: Pages) -> None:
    """A rating is counted by the instance that receives it, labelled with the track that
    answered: stable's /metrics carries canary feedback, and the canary arm must count it."""
    stable = pages.processes["stable/metrics"] = Process("stable")
    canary = pages.processes["canary/metrics"] = Process("canary")
    for _ in range(4):
        stable.answer()
        canary.answer()
    stable.feedback("up")
    canary.feedback("up")
    # Canary answers rated through stable; and an older canary's rating (another version).
    stable.metrics.feedback.labels("canary", "v1", *VARIANT, "down").inc(3)
    stable.metrics.feedback.labels("canary", "old", *VARIANT, "down").inc(7)
    target = CodeTarget(
        FixedBackend({"stable": "v1", "canary": "v1"}),  # type: ignore[arg-type]
        [pages.url("stable")],
        [pages.url("canary")],
    )
    stable_arm, canary_arm = target.arms()
    urls = (pages.url("stable/metrics"), pages.url("canary/metrics"))
    assert stable_arm.urls == canary_arm.urls == urls
    data = ScrapeSource().read(QUERIES, target.arms())
    assert data["canary"]["negative_feedback"] == Ratio(3, 4)
    assert data["stable"]["negative_feedback"] == Ratio(0, 1)
    assert data["canary"]["error_rate"] == data["stable"]["error_rate"] == Ratio(0, 4)


def test_a_server_that_is_not_prometheus_is_named_in_one_sentence(pages: Pages) -> None:
    source = PrometheusSource(url=pages.url(""), start=time.time() - 60)
    with pytest.raises(MetricsUnavailable) as caught:
        source.read(QUERIES, [Arm("stable", STABLE)])
    assert "\n" not in caught.value.message
    assert caught.value.message.endswith("(HTTP 500); is it a Prometheus server?")


def test_histogram_arithmetic() -> None:
    a = Histogram((1.0, 2.0, math.inf), (1.0, 2.0, 0.0), 4.0)
    b = Histogram((1.0, 2.0, math.inf), (0.0, 1.0, 1.0), 5.0)
    assert a.plus(b) == Histogram((1.0, 2.0, math.inf), (1.0, 3.0, 1.0), 9.0)
    assert a.plus(b).minus(b) == a
    assert a.plus(Histogram((), (), 0.0)) == a
    assert Histogram((), (), 0.0).plus(a) == a
    merged = a.plus(Histogram((1.5, math.inf), (2.0, 0.0), 3.0))
    assert merged.bounds == (1.0, 1.5, 2.0, math.inf)
    assert merged.counts == (1.0, 2.0, 2.0, 0.0)
    assert merged.count == a.count + 2
    assert Ratio(1, 4).plus(Ratio(2, 3)) == Ratio(3, 7)


# --- a running app --------------------------------------------------------------------------

QUESTIONS = [row["question"] for row in golden_rows()[:12]]


def ask(client: httpx.Client, base: str, count: int, *, start: int = 0) -> list[httpx.Response]:
    """`count` answers from the app at `base`, one user each, cycling through the questions
    from number `start`."""
    return [
        client.post(
            f"{base}/v1/answer",
            json={
                "question": QUESTIONS[(start + i) % len(QUESTIONS)],
                "user_id": f"user-{start + i}",
            },
        )
        for i in range(count)
    ]


def rate(client: httpx.Client, base: str, response: httpx.Response, rating: str) -> None:
    """Rate an earlier answer."""
    sent = client.post(
        f"{base}/v1/feedback", json={"request_id": response.json()["request_id"], "rating": rating}
    )
    assert sent.status_code == 202, sent.text


def raw_histogram(page: Metrics, name: str, **labels: str) -> Histogram:
    """A histogram straight from a parsed page (tests/support), per bucket, not cumulative."""
    cumulative: dict[float, float] = {}
    for sample in page.select(f"{name}_bucket", **labels):
        bound = float(sample.labels["le"])
        cumulative[bound] = cumulative.get(bound, 0.0) + sample.value
    bounds = tuple(sorted(cumulative))
    counts = tuple(
        cumulative[b] - (cumulative[a] if a is not None else 0.0)
        for a, b in zip((None, *bounds), bounds, strict=False)
    )
    return Histogram(bounds, counts, page.value(f"{name}_sum", **labels))


def page_of(client: httpx.Client, app: ManagedProcess) -> Metrics:
    """The app's /metrics, parsed by the test support code."""
    return parse_metrics(client.get(f"{app.url}/metrics").text)


def _minus(now: Observation, then: Observation) -> Observation:
    """What was counted between two readings (both of one kind)."""
    return now.minus(then)  # type: ignore[arg-type]


@pytest.mark.integration
def test_scrape_source_on_a_running_app(start_app: StartApp) -> None:
    app = start_app(track="stable")
    arms = [Arm("stable", STABLE, (f"{app.url}/metrics",))]
    source = ScrapeSource()
    with httpx.Client(timeout=30) as client:
        warm_up = ask(client, app.url, 3)
        rate(client, app.url, warm_up[0], "down")
        first = source.read(QUERIES, arms)["stable"]
        # Counted since the process started: what it served before the first reading too.
        assert first["error_rate"] == Ratio(sum(r.status_code != 200 for r in warm_up), 3)
        assert first["negative_feedback"] == Ratio(1, 1)
        before = page_of(client, app)

        sent = ask(client, app.url, 12, start=100)
        rate(client, app.url, sent[0], "down")
        rate(client, app.url, sent[1], "down")
        rate(client, app.url, sent[2], "up")
        data = source.read(QUERIES, arms)["stable"]
        after = page_of(client, app)

    data = {name: _minus(now, first[name]) for name, now in data.items()}  # since `first`
    failed = sum(r.status_code != 200 for r in sent)
    answered = len(sent) - failed
    assert data["error_rate"] == Ratio(failed, len(sent))
    duration = "app_answer_duration_seconds"
    fast = after.value(f"{duration}_bucket", le="0.5") - before.value(
        f"{duration}_bucket", le="0.5"
    )
    assert data["slow_answers"] == Ratio(answered - fast, answered)
    assert data["negative_feedback"] == Ratio(2, 3)
    quality = data["quality_score"]
    assert isinstance(quality, Histogram)
    assert quality == raw_histogram(after, "app_quality_score", **STABLE).minus(
        raw_histogram(before, "app_quality_score", **STABLE)
    )
    assert quality.count == answered
    scores = [r.json()["quality"]["score"] for r in sent if r.status_code == 200]
    assert quality.total == pytest.approx(sum(scores), abs=1e-6)
    cost = data["cost_per_answer"]
    assert isinstance(cost, Histogram)
    # The response rounds each cost to 1e-8 dollars.
    assert cost.total == pytest.approx(
        sum(r.json()["usage"]["estimated_cost_usd"] for r in sent if r.status_code == 200),
        abs=1e-8 * len(sent),
    )

    # A restart on the same port: the counters start from zero, the analysis keeps its counts.
    app.stop()
    start_app(track="stable", port=str(app.port), wait=None)
    with httpx.Client(timeout=30) as client:
        poll_until(
            lambda: client.get(f"{app.url}/readyz").status_code == 200,
            timeout=30,
            interval=0.1,
            message="the restarted app ready",
        )
        more = ask(client, app.url, 4, start=200)
    data = {
        name: _minus(now, first[name]) for name, now in source.read(QUERIES, arms)["stable"].items()
    }
    assert data["error_rate"] == Ratio(
        failed + sum(r.status_code != 200 for r in more), len(sent) + len(more)
    )
    assert "stable/error_rate" in source.resets
    assert isinstance(data["quality_score"], Histogram)
    assert data["quality_score"].count == answered + sum(r.status_code == 200 for r in more)


# --- a real Prometheus ----------------------------------------------------------------------

SCRAPE_INTERVAL = 1.0


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[ManagedProcess, Path]]:
    """A real Prometheus on 127.0.0.1 scraping every second the targets in its file."""
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed")
    targets = tmp_path / "targets.json"
    proc = start_prometheus(
        port=free_port(),
        workdir=tmp_path / "prometheus",
        targets_file=targets,
        scrape_interval=SCRAPE_INTERVAL,
    )
    try:
        proc.wait_http("/-/ready", timeout=30)
        yield proc, targets
    finally:
        proc.stop()


def promql(prometheus: ManagedProcess, query: str) -> list[tuple[dict[str, str], float]]:
    """An instant query's result as (labels, value)."""
    body = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": query}, timeout=10).json()
    assert body["status"] == "success", body
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def prometheus_agrees(
    prometheus: ManagedProcess, client: httpx.Client, apps: dict[str, ManagedProcess]
) -> bool:
    """Whether Prometheus's latest answer counts per track equal each app's own page."""
    seen = {m["track"]: v for m, v in promql(prometheus, "sum by (track) (app_answers_total)")}
    return all(
        seen.get(track) == page_of(client, app).value("app_answers_total")
        for track, app in apps.items()
    )


def warm_up(
    client: httpx.Client, app: ManagedProcess, *, with_errors: bool
) -> list[httpx.Response]:
    """Get every test question answered once (so the answered and refused series exist, even
    where injected faults fail some requests), and one request failed when `with_errors`;
    returns the answers."""
    answers, failed = [], 0
    for question in range(len(QUESTIONS)):
        for attempt in range(20):
            [response] = ask(client, app.url, 1, start=question + len(QUESTIONS) * attempt)
            if response.status_code == 200:
                answers.append(response)
                break
            failed += 1
        else:
            raise AssertionError(f"{app.name}: question {question} failed 20 times")
    for attempt in range(60):
        if failed or not with_errors:
            return answers
        [response] = ask(client, app.url, 1, start=attempt)
        failed += response.status_code != 200
    raise AssertionError(f"{app.name}: no injected error in 60 requests")


def within(reading: float, scraped: float, factor: float) -> bool:
    """increase() over a window only ever extrapolates up, by at most `factor`."""
    return scraped - 1e-9 <= reading <= scraped * factor + 1e-9


@pytest.mark.integration
def test_prometheus_source_agrees_with_scraping(
    start_app: StartApp, prometheus: tuple[ManagedProcess, Path]
) -> None:
    """Both sources read the same window of the same two apps. increase() extrapolates from the
    first and last samples in the window to its edges, so with samples every second in a window
    of W seconds it reads up to W / (W - 2.5) times the true count, never less; ratios and means,
    which divide two such readings, agree within that factor either way."""
    server, targets = prometheus
    apps = {
        "stable": start_app(track="stable"),
        "canary": start_app(track="canary", fault_error_rate="0.5"),
    }
    write_targets(targets, {"apps": [f"127.0.0.1:{app.port}" for app in apps.values()]})
    arms = [Arm(track, {"track": track}, (f"{app.url}/metrics",)) for track, app in apps.items()]
    source = ScrapeSource()
    with httpx.Client(timeout=30) as client:
        # Every series the queries use must exist before the window opens: increase() counts
        # a series that appears inside the window from its first sample, not from zero.
        for track, app in apps.items():
            answered = warm_up(client, app, with_errors=track == "canary")
            rate(client, app.url, answered[0], "down")  # one rating per answer
            rate(client, app.url, answered[1], "up")
        poll_until(
            lambda: prometheus_agrees(server, client, apps),
            timeout=30,
            interval=0.2,
            message="Prometheus scraping the apps",
        )
        seen_at = time.time()
        poll_until(
            lambda: min(v for _, v in promql(server, "timestamp(up)")) > seen_at,
            timeout=10,
            interval=0.2,
            message="one more scrape",
        )
        baseline = source.read(QUERIES, arms)  # the scrape counts from each process's start
        start = time.time()
        # A sample after the window opens and before any request: the window's first sample
        # then holds the baseline, whichever side of `start` it falls.
        poll_until(
            lambda: min(v for _, v in promql(server, "timestamp(up)")) > start,
            timeout=10,
            interval=0.1,
            message="a scrape after the window opened",
        )

        for app in apps.values():
            sent = ask(client, app.url, 16, start=1000)
            for response, rating in zip(
                [r for r in sent if r.status_code == 200],
                ["down", "up", "up", "down"],
                strict=False,
            ):
                rate(client, app.url, response, rating)
        poll_until(
            lambda: time.time() > start + 12 and prometheus_agrees(server, client, apps),
            timeout=30,
            interval=0.2,
            message="Prometheus holding the final counts",
        )
        end = time.time()
        scraped = {
            track: {name: _minus(now, baseline[track][name]) for name, now in data.items()}
            for track, data in source.read(QUERIES, arms).items()
        }
    read = PrometheusSource(url=server.url, start=start, now=end).read(QUERIES, arms)

    window = math.ceil(end - start)
    factor = window / (window - 2.5 * SCRAPE_INTERVAL)
    for track in apps:
        for name in ("error_rate", "slow_answers", "negative_feedback"):
            got, want = read[track][name], scraped[track][name]
            assert isinstance(got, Ratio) and isinstance(want, Ratio)
            assert want.total > 0
            assert within(got.total, want.total, factor), (track, name, got, want, factor)
            assert within(got.hits, want.hits, factor), (track, name, got, want, factor)
        for name in ("quality_score", "cost_per_answer"):
            got_h, want_h = read[track][name], scraped[track][name]
            assert isinstance(got_h, Histogram) and isinstance(want_h, Histogram)
            assert got_h.bounds == want_h.bounds
            assert within(got_h.count, want_h.count, factor), (track, name, got_h, want_h)
            assert within(got_h.total, want_h.total, factor), (track, name, got_h, want_h)
            mean_got, mean_want = got_h.total / got_h.count, want_h.total / want_h.count
            assert mean_want / factor <= mean_got <= mean_want * factor
    canary_errors = read["canary"]["error_rate"]
    assert isinstance(canary_errors, Ratio) and canary_errors.hits > 0


@pytest.mark.integration
def test_prometheus_source_unreachable_is_metrics_unavailable() -> None:
    source = PrometheusSource(url=f"http://127.0.0.1:{free_port()}", start=time.time() - 60)
    with pytest.raises(MetricsUnavailable, match="cannot query Prometheus") as caught:
        source.read(QUERIES, [Arm("stable", STABLE)])
    assert caught.value.exit_code == EXIT_INCONCLUSIVE


def test_metric_query_kinds_cover_the_policy() -> None:
    """Every policy query is either a ratio (total and one of hits/good) or a histogram."""
    for query in QUERIES:
        assert isinstance(query, MetricQuery)
        if query.kind == "ratio":
            assert query.total is not None and (query.hits is None) != (query.good is None)
        else:
            assert query.histogram is not None
