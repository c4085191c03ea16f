"""The local platform's router: sticky weighted routing, the admin API, and no dropped request
while weights change or a backend dies. Unit tests of the routing table first, then the router
as a real process in front of small echo backends."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from contract.assignment import in_canary
from scripts.toolkit.platform.routing import SALT, RoutingError, RoutingTable, unit_id
from scripts.toolkit.platform.state import PlatformState, StateStore
from scripts.toolkit.processes import ManagedProcess, free_port, python_module
from tests.support.http import assert_error
from tests.support.metrics import parse_metrics
from tests.support.service import REPO

TOKEN = "router-test-token-0123456789"
USERS = [f"user-{n}" for n in range(2000)]

# Published vectors of the router's experiment (salt "router"), computed once with plain
# hashlib, independently of app/: bucket = int(sha256(f"router:{unit}").hexdigest()[:15], 16)
# % 10000. A gateway replacing this router must place these units in the same buckets.
ROUTER_VECTORS = [("alice", 8740), ("bob", 6466), ("user-1", 3006), ("user-42", 6804)]


def table(weights: dict[str, float]) -> RoutingTable:
    return RoutingTable.build({t: f"http://127.0.0.1:1/{t}" for t in weights}, weights)


# -- the routing table --------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "expected"), ROUTER_VECTORS)
def test_router_places_published_vectors_at_their_bucket(unit: str, expected: int) -> None:
    assert SALT == "router"
    # The canary owns buckets [0, p*100): the unit is in at (bucket+1)/100 %, out at bucket/100 %.
    assert (
        table({"canary": (expected + 1) / 100, "stable": 100 - (expected + 1) / 100}).choose(unit)
        == "canary"
    )
    assert table({"canary": expected / 100, "stable": 100 - expected / 100}).choose(unit) == (
        "stable"
    )


def test_split_is_within_two_points_and_matches_the_assignment_contract() -> None:
    routes = table({"canary": 20, "stable": 80})
    chosen = {u: routes.choose(u) for u in USERS}
    share = Counter(chosen.values())["canary"] / len(USERS)
    assert 0.18 <= share <= 0.22, share
    assert all((chosen[u] == "canary") == in_canary(u, SALT, 20) for u in USERS)
    assert all(routes.choose(u) == chosen[u] for u in USERS), "same user, same track"


def test_raising_the_canary_only_adds_users_and_lowering_it_sends_the_same_back() -> None:
    at5 = {u for u in USERS if table({"canary": 5, "stable": 95}).choose(u) == "canary"}
    at20 = {u for u in USERS if table({"canary": 20, "stable": 80}).choose(u) == "canary"}
    assert at5 < at20, "every 5% user stays on the canary at 20%"
    assert 0.03 <= len(at5) / len(USERS) <= 0.07
    back = {u for u in USERS if table({"canary": 5, "stable": 95}).choose(u) == "canary"}
    assert back == at5


def test_three_tracks_split_in_bucket_order() -> None:
    routes = table({"canary": 10, "blue": 30, "stable": 60})
    shares = Counter(routes.choose(u) for u in USERS)
    assert abs(shares["canary"] / 2000 - 0.10) < 0.02
    assert abs(shares["blue"] / 2000 - 0.30) < 0.03
    assert abs(shares["stable"] / 2000 - 0.60) < 0.03


def test_unit_id_prefers_user_then_session_then_header() -> None:
    both = json.dumps({"user_id": "u1", "session_id": "s1"}).encode()
    assert unit_id(both, "h1") == "u1"
    assert unit_id(json.dumps({"session_id": "s1"}).encode(), "h1") == "s1"
    assert unit_id(b'{"question": "x"}', "h1") == "h1"
    assert unit_id(b"not json", "h1") == "h1"
    assert unit_id(b'{"user_id": "  u2 "}', None) == "u2", "stripped, as the service reads it"
    assert unit_id(b"", None) != unit_id(b"", None), "no id: a random one per request"


@pytest.mark.parametrize(
    ("backends", "weights", "message"),
    [
        ({"stable": "http://a"}, {"stable": 90}, "Weights must add up to 100, not 90."),
        ({"stable": "http://a", "red": "http://b"}, {"stable": 100}, "Unknown track 'red'"),
        ({"stable": "http://a"}, {"stable": 50, "canary": 50}, "has a weight but no backend"),
        ({"stable": "ftp://a"}, {"stable": 100}, "must be an http(s) URL"),
        ({"stable": "http://a"}, {"stable": 150}, "between 0 and 100"),
        ({"stable": "http://a"}, {"stable": "all"}, "must be a number"),
    ],
)
def test_invalid_tables_are_refused(
    backends: dict[str, str], weights: dict[str, Any], message: str
) -> None:
    with pytest.raises(RoutingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RoutingTable.build(backends, weights)


def test_fallback_is_stable_for_the_canary_and_the_other_color_for_blue_green() -> None:
    assert table({"canary": 50, "stable": 50}).fallback_for("canary") == "stable"
    assert table({"blue": 100, "green": 0}).fallback_for("blue") == "green"
    assert table({"canary": 0, "stable": 100}).fallback_for("stable") is None


# -- the router as a process ----------------------------------------------------------------


class EchoBackends:
    """Small aiohttp servers, one per track, answering with what they received."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: dict[str, web.AppRunner] = {}
        self.urls: dict[str, str] = {}

    def start(self, track: str) -> str:
        port = free_port()
        asyncio.run_coroutine_threadsafe(self._start(track, port), self.loop).result(10)
        self.urls[track] = f"http://127.0.0.1:{port}"
        return self.urls[track]

    async def _start(self, track: str, port: int) -> None:
        async def echo(request: web.Request) -> web.Response:
            body = await request.read()
            return web.json_response(
                {
                    "track": track,
                    "method": request.method,
                    "path_qs": request.path_qs,
                    "headers": dict(request.headers),
                    "body": body.decode(),
                },
                headers={"X-Backend": track},
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners[track] = runner

    def stop(self, track: str) -> None:
        runner = self.runners.pop(track)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), self.loop).result(10)

    def close(self) -> None:
        for track in list(self.runners):
            self.stop(track)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class RouterProcess:
    """The router under test: its URL, state folder and process."""

    url: str
    store: StateStore
    process: ManagedProcess
    backends: EchoBackends

    def admin(self, method: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        return httpx.request(
            method,
            f"{self.url}/-/routes",
            json=body,
            headers={"X-Admin-Token": TOKEN, **headers},
            timeout=5,
        )

    def put(self, weights: dict[str, float]) -> httpx.Response:
        return self.admin("PUT", {"backends": self.backends.urls, "weights": weights})


@pytest.fixture
def backends() -> Iterator[EchoBackends]:
    echo = EchoBackends()
    for track in ("stable", "canary"):
        echo.start(track)
    yield echo
    echo.close()


def start_router(store: StateStore, port: int, backends: EchoBackends) -> RouterProcess:
    process = python_module(
        f"router-{port}",
        "scripts.toolkit.platform.router",
        port=port,
        args=["--platform-dir", str(store.dir)],
        log_dir=store.dir,
        cwd=REPO,
    )
    process.start().wait_http("/-/healthz", timeout=20)
    return RouterProcess(f"http://127.0.0.1:{port}", store, process, backends)


@pytest.fixture
def router(tmp_path: Path, backends: EchoBackends) -> Iterator[RouterProcess]:
    port = free_port()
    store = StateStore(tmp_path)
    store.write(
        PlatformState(
            state_dir=str(tmp_path),
            repo=str(REPO),
            admin_token=TOKEN,
            router_port=port,
            registry_dir=str(tmp_path / "registry"),
            routes={"backends": dict(backends.urls), "weights": {"stable": 100}},
        )
    )
    proc = start_router(store, port, backends)
    yield proc
    proc.process.stop()


async def route_all(url: str, users: list[str], *, concurrency: int = 20) -> dict[str, str]:
    """Each user's routed track, by GET with X-User-ID."""
    tracks: dict[str, str] = {}
    queue = list(users)
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                user = queue.pop()
                async with session.get(f"{url}/ping", headers={"X-User-ID": user}) as response:
                    assert response.status == 200
                    tracks[user] = response.headers["X-Routed-Track"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tracks


@pytest.mark.integration
def test_forwards_request_and_marks_the_track(router: RouterProcess) -> None:
    response = httpx.post(
        f"{router.url}/v1/answer?debug=1&x=%20y",
        content=b'{"user_id": "alice", "question": "q"}',
        headers={
            "Content-Type": "application/json",
            "X-Custom": "kept",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "hop-by-hop",
            "Keep-Alive": "timeout=5",
        },
    )
    assert response.status_code == 200
    assert response.headers["X-Routed-Track"] == "stable"
    assert response.headers["X-Backend"] == "stable", "backend headers come back"
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path_qs"] == "/v1/answer?debug=1&x=%20y"
    assert json.loads(seen["body"]) == {"user_id": "alice", "question": "q"}
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["x-custom"] == "kept"
    assert "x-drop-me" not in headers, "headers named in Connection are hop-by-hop"
    assert "keep-alive" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"


@pytest.mark.integration
async def test_split_and_stickiness_over_2000_users(router: RouterProcess) -> None:
    assert router.put({"canary": 20, "stable": 80}).status_code == 200
    first = await route_all(router.url, USERS)
    again = await route_all(router.url, USERS)
    assert first == again, "every user stays on their track"
    assert all((first[u] == "canary") == in_canary(u, SALT, 20) for u in USERS)
    share = Counter(first.values())["canary"] / len(USERS)
    assert 0.18 <= share <= 0.22, share


@pytest.mark.integration
async def test_canary_5_to_20_keeps_its_users_and_rollback_returns_them(
    router: RouterProcess,
) -> None:
    router.put({"canary": 5, "stable": 95})
    at5 = {u for u, t in (await route_all(router.url, USERS)).items() if t == "canary"}
    router.put({"canary": 20, "stable": 80})
    at20 = {u for u, t in (await route_all(router.url, USERS)).items() if t == "canary"}
    assert at5 and at5 < at20
    router.put({"stable": 100})
    assert set((await route_all(router.url, USERS)).values()) == {"stable"}


@pytest.mark.integration
def test_per_request_assignment_splits_one_users_requests_and_survives_a_weight_change(
    router: RouterProcess,
) -> None:
    """The policy's `code_assignment: request`: the router draws each request, so one heavy user
    cannot put a whole step's traffic on one arm; a later weight change keeps the mode."""
    body = {"backends": router.backends.urls, "weights": {"canary": 50, "stable": 50}}
    assert router.admin("PUT", {**body, "per_request": True}).json()["per_request"] is True
    with httpx.Client(base_url=router.url, headers={"X-User-ID": "u-1"}) as client:
        tracks = Counter(client.get("/ping").headers["X-Routed-Track"] for _ in range(400))
    assert 0.4 <= tracks["canary"] / 400 <= 0.6
    changed = RoutingTable.from_dict(router.admin("GET").json()).changed(
        weights={"canary": 20, "stable": 80}
    )
    assert router.admin("PUT", changed.to_dict()).json()["per_request"] is True
    assert router.put({"canary": 20, "stable": 80}).json()["per_request"] is False


@pytest.mark.integration
async def test_blue_green_switch_flips_every_user_at_once(router: RouterProcess) -> None:
    router.backends.start("blue")
    router.backends.start("green")
    router.backends.stop("stable")
    router.backends.urls.pop("stable")
    assert router.put({"blue": 100, "green": 0}).status_code == 200
    assert set((await route_all(router.url, USERS[:300])).values()) == {"blue"}
    assert router.put({"blue": 0, "green": 100}).status_code == 200
    assert set((await route_all(router.url, USERS[:300])).values()) == {"green"}


@pytest.mark.integration
def test_admin_api_needs_the_token(router: RouterProcess) -> None:
    for token in ("", "wrong-token"):
        assert_error(router.admin("GET", **{"X-Admin-Token": token}), 403)
        body = {"backends": router.backends.urls, "weights": {"canary": 100}}
        assert_error(router.admin("PUT", body, **{"X-Admin-Token": token}), 403)
    assert httpx.get(f"{router.url}/-/routes").status_code == 403
    assert router.admin("GET").json()["weights"] == {"canary": 0.0, "stable": 100.0}
    assert httpx.get(f"{router.url}/-/healthz").status_code == 200, "health needs no token"
    assert_error(httpx.get(f"{router.url}/-/nothing"), 404)


@pytest.mark.integration
def test_put_validation_errors_are_400_with_one_sentence(router: RouterProcess) -> None:
    urls = router.backends.urls
    cases = [
        ({"backends": urls, "weights": {"stable": 60, "canary": 30}}, "add up to 100"),
        ({"backends": urls, "weights": {"stable": 90, "purple": 10}}, "Unknown track 'purple'"),
        (
            {"backends": {"stable": urls["stable"]}, "weights": {"stable": 80, "canary": 20}},
            "no backend",
        ),
        ({"weights": {"stable": 100}}, "'backends' and 'weights'"),
        ([1, 2], "JSON object"),
    ]
    for body, fragment in cases:
        response = httpx.put(
            f"{router.url}/-/routes", json=body, headers={"X-Admin-Token": TOKEN}, timeout=5
        )
        assert fragment in assert_error(response, 400)
    bad_json = httpx.put(
        f"{router.url}/-/routes", content=b"{", headers={"X-Admin-Token": TOKEN}, timeout=5
    )
    assert_error(bad_json, 400)
    assert router.admin("GET").json()["weights"]["stable"] == 100, "nothing changed"


@pytest.mark.integration
def test_stale_revision_is_refused_with_409(router: RouterProcess) -> None:
    revision = router.admin("GET").json()["revision"]
    body = {"backends": router.backends.urls, "weights": {"canary": 10, "stable": 90}}
    assert router.admin("PUT", {**body, "revision": revision}).json()["revision"] == revision + 1
    assert_error(router.admin("PUT", {**body, "revision": revision}), 409)


@pytest.mark.integration
async def test_weight_changes_under_20_concurrent_clients_fail_no_request(
    router: RouterProcess,
) -> None:
    failures: list[str] = []
    served: Counter[str] = Counter()
    done = asyncio.Event()

    async def client(number: int) -> None:
        async with aiohttp.ClientSession() as session:
            n = 0
            while not done.is_set():
                n += 1
                body = {"user_id": f"c{number}-{n % 40}", "question": "q"}
                try:
                    async with session.post(f"{router.url}/v1/answer", json=body) as response:
                        await response.read()
                        served[response.headers.get("X-Routed-Track", "?")] += 1
                        if response.status != 200:
                            failures.append(f"HTTP {response.status}")
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))

    clients = [asyncio.create_task(client(n)) for n in range(20)]
    async with httpx.AsyncClient(headers={"X-Admin-Token": TOKEN}, timeout=5) as admin:
        for step in range(40):
            canary = (step * 5) % 105
            response = await admin.put(
                f"{router.url}/-/routes",
                json={
                    "backends": router.backends.urls,
                    "weights": {"canary": canary, "stable": 100 - canary},
                },
            )
            assert response.status_code == 200
            await asyncio.sleep(0.03)
    done.set()
    await asyncio.gather(*clients)
    assert failures == []
    assert served["canary"] > 0 and served["stable"] > 0
    assert sum(served.values()) > 200


@pytest.mark.integration
async def test_refused_backend_falls_back_to_stable_and_is_counted(router: RouterProcess) -> None:
    router.put({"canary": 50, "stable": 50})
    router.backends.stop("canary")  # connection refused from now on
    tracks = await route_all(router.url, USERS[:400])
    assert set(tracks.values()) == {"stable"}, "every request answered by stable"
    async with httpx.AsyncClient() as client:
        metrics = parse_metrics((await client.get(f"{router.url}/-/metrics")).text)
    expected = sum(in_canary(u, SALT, 50) for u in USERS[:400])
    fallbacks = metrics.value("router_fallbacks_total", from_track="canary", to_track="stable")
    assert fallbacks == expected
    assert metrics.value("router_requests_total", track="stable", code="200") == 400
    assert metrics.value("router_weight_percent", track="canary") == 50


@pytest.mark.integration
def test_no_backend_left_is_a_502_with_the_track(router: RouterProcess) -> None:
    router.backends.stop("stable")
    response = httpx.get(f"{router.url}/x", headers={"X-User-ID": "alice"})
    assert response.headers["X-Routed-Track"] == "stable"
    assert "unreachable" in assert_error(response, 502)


@pytest.mark.integration
def test_restarted_router_keeps_its_weights(router: RouterProcess) -> None:
    put = router.put({"canary": 30, "stable": 70})
    assert put.status_code == 200
    assert router.store.read().routes == put.json(), "saved in the state file"
    assert os.stat(router.store.path).st_mode & 0o777 == 0o600
    router.process.stop()
    again = start_router(router.store, router.process.port, router.backends)
    try:
        assert again.admin("GET").json() == put.json()
    finally:
        again.process.stop()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_metrics_pass_promtool(router: RouterProcess) -> None:
    httpx.get(f"{router.url}/x", headers={"X-User-ID": "alice"})
    text = httpx.get(f"{router.url}/-/metrics").text
    check = subprocess.run(
        ["promtool", "check", "metrics"],  # noqa: S607  # the installed promtool
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
