"""The public link's limits on requests: sizes, read times, rates and what an error page may quote.

Each answers a 4xx (or 429) whose message names the limit. The read deadline is a real server's: uvicorn on a
free loopback port, in a thread, with a deadline of a fraction of a second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from app.quoting import MAX_QUOTED
from app.rate_limit import DEFAULT_RATE_LIMIT, RateLimit, RateLimited, RateLimiter, RateLimitMiddleware, charge
from app.server_limits import MAX_BODY_BYTES, MAX_REQUEST_HEAD_BYTES, ServerLimits
from sim.user.programs import MAX_LOOP

BIG = "A" * 60_000


# --- what an error quotes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"/scenarios/dd-system-time?{BIG}=1",
        f"/scenarios/dd-system-time?bs={BIG}",
        f"/scenarios/dd-system-time?views={BIG}",
        f"/scenarios/{BIG}",
        f"/api/runs?command=x&profile={BIG}",
        f"/api/runs/dd-system-time/steps/{BIG}",
        f"/trace?command={BIG}",
        f"/vendor/{BIG}",
    ],
)
def test_an_error_quotes_a_short_prefix_of_a_bad_value(client, url):
    response = client.get(url)
    assert 400 <= response.status_code < 500
    assert "A" * (MAX_QUOTED + 1) not in response.text
    assert len(response.content) < 20_000


def test_a_cut_value_says_how_long_it_was(client):
    response = client.get(f"/api/runs?command=x&profile={BIG}")
    assert response.status_code == 422
    assert "not '" + "A" * (MAX_QUOTED - 1) + "… (60,002 characters)" in response.json()["detail"]  # repr's quotes


# --- digits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/scenarios/dd-system-time?count=²", 422, "must be a whole number from 1"),
        ("/scenarios/dd-system-time?count=٣", 422, "must be a whole number from 1"),
        ("/scenarios/dd-system-time?count=" + "9" * 4000, 422, "must be a whole number from 1"),
        ("/api/runs?command=getpid ²", 400, f"COUNT must be a whole number from 1 to {MAX_LOOP:,}"),
        ("/api/runs?command=getpid " + "9" * 4000, 400, "COUNT must be a whole number"),
        ("/api/runs?command=exit ²", 400, "status must be a whole number from 0 to 255"),
        ("/api/runs?command=dd count=" + "9" * 4000, 400, "dd: count: Result too large"),
        ("/api/runs?command=ipc-static -b ² 2proc", 400, "-b needs a positive whole number of bytes"),
        ("/api/runs?command=ipc-static -b " + "9" * 4000 + " 2proc", 400, "-b needs a positive whole number"),
    ],
)
def test_digits_are_ascii_and_a_huge_number_is_a_4xx(client, url, status, words):
    response = client.get(url)
    assert response.status_code == status
    assert words in response.text


# --- request sizes ------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_naming_it(client):
    response = client.post("/rooms", content=b"x" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.text == f"the request body is over the limit of {MAX_BODY_BYTES:,} bytes\n"


def test_a_streamed_body_over_the_limit_is_a_413(client):
    chunks = iter([b"x" * 40_000, b"x" * 40_000])
    response = client.post("/rooms", content=chunks)  # no Content-Length: counted as it arrives
    assert response.status_code == 413


def test_a_request_head_over_the_limit_is_a_431_naming_it(client):
    response = client.get("/healthz", headers={"X-Padding": "p" * MAX_REQUEST_HEAD_BYTES})
    assert response.status_code == 431
    assert f"over the limit of {MAX_REQUEST_HEAD_BYTES:,} bytes" in response.text


def test_the_server_limits_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRAPSCOPE_HEADER_READ_TIMEOUT_S", "2.5")
    monkeypatch.setenv("TRAPSCOPE_MAX_CONNECTIONS", "nonsense")
    limits = ServerLimits.from_env()
    assert limits.header_read_timeout_s == 2.5
    assert limits.max_connections == ServerLimits().max_connections
    kwargs = limits.uvicorn_kwargs()
    assert kwargs["h11_max_incomplete_event_size"] == MAX_REQUEST_HEAD_BYTES
    assert kwargs["http"].keywords == {"header_read_timeout_s": 2.5}


# --- slow clients, on a real server -------------------------------------------------------------------------

READ_TIMEOUT_S = 0.5


async def hello(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limits = ServerLimits(header_read_timeout_s=READ_TIMEOUT_S, keep_alive_timeout_s=1)
    config = uvicorn.Config(hello, host="127.0.0.1", port=port, log_level="warning", **limits.uvicorn_kwargs())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(5)


def exchange(port: int, *parts: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send `parts` (pausing between them), then read until the server closes: (what came back, seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=4) as connection:
        started = time.monotonic()
        for part in parts:
            connection.sendall(part)
            time.sleep(pause)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received, time.monotonic() - started


def test_a_client_sending_its_headers_slowly_is_answered_408_and_dropped(server_port):
    answer, seconds = exchange(server_port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert f"longer than {READ_TIMEOUT_S:g} s to arrive".encode() in answer
    assert seconds < 3


def test_a_slow_next_request_on_a_kept_alive_connection_is_dropped_too(server_port):
    first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    answer, seconds = exchange(server_port, first, b"GET / HTTP/1.1\r\n", pause=0.1)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"HTTP/1.1 408 Request Timeout" in answer
    assert seconds < 3


def test_a_request_that_arrives_in_time_is_served(server_port):
    answer, _ = exchange(server_port, b"GET / HTTP/1.1\r\nHost: x\r\n", b"Connection: close\r\n\r\n", pause=0.1)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"ok")


def test_a_request_head_growing_past_the_limit_is_a_431(server_port):
    half = b"x" * (MAX_REQUEST_HEAD_BYTES // 2 + 10)
    answer, _ = exchange(server_port, b"GET /?" + half, half, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert f"over the limit of {MAX_REQUEST_HEAD_BYTES:,} bytes".encode() in answer


# --- rate limits --------------------------------------------------------------------------------------------


def test_the_rate_limit_is_on_in_the_public_apps_default_configuration(monkeypatch):
    monkeypatch.delenv("TRAPSCOPE_RATE_LIMIT")
    assert RateLimit.from_env() == RateLimit.parse(DEFAULT_RATE_LIMIT) is not None
    assert isinstance(create_app().state.rate_limiter, RateLimiter)
    assert RateLimit.parse("off") is None


def test_a_token_bucket_refills_at_its_rate_and_forgets_the_oldest_client():
    now = [0.0]
    limiter = RateLimiter(RateLimit(2, 10), max_clients=2, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == 5
    now[0] = 5.0
    limiter.take("a")  # one token back after 5 s
    limiter.take("b")
    limiter.take("c")  # the table holds two clients: "a" is forgotten
    limiter.take("a")
    limiter.take("a")


@pytest.fixture
def limited_client(monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TRAPSCOPE_RATE_LIMIT", "2/60")
    with TestClient(create_app()) as client:
        yield client


def test_new_runs_past_the_rate_limit_are_429_with_retry_after_but_cached_steps_are_not(limited_client):
    for n in (1, 2):
        assert limited_client.get(f"/api/runs?command=getpid {n}").status_code == 200
    refused = limited_client.get("/api/runs?command=getpid 3")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "the limit is 2 per 60 s" in refused.json()["detail"]
    for _ in range(5):
        assert limited_client.get("/api/runs?command=getpid 1").status_code == 200  # cached: free


def test_d_programs_past_the_rate_limit_are_429_on_the_trace_page(limited_client):
    limited_client.get("/api/runs?command=getpid 1")  # one token for the run
    traced = limited_client.get("/trace?command=getpid 1&script=BEGIN { exit(0); }")  # compiles and runs: one
    assert traced.status_code == 200
    refused = limited_client.get("/trace?command=getpid 1&script=END { }", headers={"HX-Request": "true"})
    assert refused.status_code == 429
    assert "too many new runs or D programs from your address" in refused.text
    assert limited_client.get("/trace?command=getpid 1&script=BEGIN { exit(0); }").status_code == 200  # cached


@pytest.mark.parametrize(("path", "limited"), [("/scenarios/getpid", True), ("/rooms/K7QXM/events", False)])
def test_a_rooms_event_stream_is_not_charged_for_the_lecturers_run(path, limited):
    async def expensive(scope, receive, send) -> None:
        charge()
        await hello(scope, receive, send)

    app = RateLimitMiddleware(expensive, RateLimiter(RateLimit(1, 60)))
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: a bare ASGI app
    statuses = [client.get(path).status_code for _ in range(3)]
    assert statuses == ([200, 500, 500] if limited else [200, 200, 200])  # bare middleware: RateLimited unhandled


# --- every recording route has the web's budget ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs?command=getpid 9",
        "/scenarios/command?command=getpid 9",
        "/trace?command=getpid 9&script=BEGIN { exit(0); }",
        "/trace/flame?command=getpid 9",
        "/scenarios/command/console?command=getpid 9&script=BEGIN { exit(0); }",
    ],
)
@pytest.mark.parametrize("slack", [200_000, 0])  # 0: the run outgrows its whole event budget, not only the record
def test_every_route_that_records_a_run_has_the_webs_event_budget(url, slack, monkeypatch):
    monkeypatch.setattr("app.main.WEB_EVENT_BUDGET", 100)
    monkeypatch.setattr("app.main.EXEC_SLACK", slack)
    with TestClient(create_app()) as client:
        response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "more than 100 steps, the web's limit for one run" in response.text.replace("&#39;", "'")


HUGE_DD = "dd if=/dev/zero of=/dev/null bs=64m count=1"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/runs?command={HUGE_DD}",
        f"/scenarios/command?command={HUGE_DD}",
        f"/trace?command={HUGE_DD}&script=BEGIN {{ exit(0); }}",
        f"/trace/flame?command={HUGE_DD}",
        f"/scenarios/command/console?command={HUGE_DD}&script=BEGIN {{ exit(0); }}",
    ],
)
def test_a_dd_over_the_webs_size_is_refused_before_it_records(url, monkeypatch):
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("recorded a run the web refuses")

    monkeypatch.setattr("app.main.record", never)
    with TestClient(create_app()) as client:
        response = client.get(url, headers={"HX-Request": "true"})
    assert 400 <= response.status_code < 500
    # the stepping pages check their knobs (bs up to 32m); the others the command line's bs times count
    assert "bs times count is 67,108,864 bytes: the web limit is 32 MiB a run" in response.text or (
        "must be from 1 byte to 32m on the web, not &#39;64m&#39;" in response.text
    )


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server_port):
    answer, seconds = exchange(server_port)
    assert answer == b""
    assert seconds < 3
