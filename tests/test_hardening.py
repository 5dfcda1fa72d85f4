"""Hardening (issue #11 point 6): security headers on every answer, 500s included, a clear 500 for a failure nobody
foresaw, HEAD wherever GET, frame-ancestors for embedding, /readyz, short error pages and a short access log.

Metrics are tested in test_hardening_metrics.py, shutdown with a real server in test_hardening_shutdown.py.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.main import create_app
from app.quoting import MAX_QUOTED
from app.security import SECURITY_HEADERS
from app.vendor import vendor_urls


class Boom(RuntimeError):
    pass


@pytest.fixture(scope="module")
def app():
    app = create_app()
    # Test-only routes that fail as no handler foresaw: a page, an API route, and a stream that fails midway.
    failing = APIRouter()

    @failing.get("/test-only/boom")
    async def page_boom() -> None:
        raise Boom("the secret detail that must stay in the log")

    @failing.get("/api/test-only/boom")
    async def api_boom() -> None:
        raise Boom("the secret detail that must stay in the log")

    app.include_router(failing)
    return app


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, follow_redirects=False) as client:
        yield client


def assert_security_headers(response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


@pytest.mark.parametrize("path", ["/test-only/boom", "/api/test-only/boom"])
def test_an_unforeseen_failure_is_a_clear_500_with_the_security_headers_and_a_logged_traceback(client, path, caplog):
    with caplog.at_level(logging.ERROR, logger="trapscope.error"):
        response = client.get(path)
    assert response.status_code == 500
    assert_security_headers(response)
    assert "the secret detail" not in response.text  # the traceback is for the log, not the person
    if path.startswith("/api/"):
        assert response.headers["content-type"] == "application/json"
        assert "trapscope failed to answer this request" in response.json()["detail"]
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert "trapscope failed to answer this request" in response.text
        assert '<link rel="stylesheet"' in response.text  # the styled page, not a bare "Internal Server Error"
    logged = [record for record in caplog.records if record.name == "trapscope.error"]
    assert logged and logged[-1].exc_info and logged[-1].exc_info[0] is Boom


def test_an_htmx_request_that_fails_gets_a_fragment(client):
    response = client.get("/test-only/boom", headers={"HX-Request": "true", "HX-Target": "#stepper"})
    assert response.status_code == 500
    assert 'id="stepper"' in response.text and "<html" not in response.text
    assert_security_headers(response)


def test_every_kind_of_answer_carries_the_security_headers(client):
    for path in ["/", "/healthz", "/readyz", "/api/scenarios", "/openapi.json", "/nothing/here", "/metrics"]:
        assert_security_headers(client.get(path))


HEAD_PATHS = [
    "/",
    "/scenarios/getpid?step=3",
    "/scenarios/getpid/console",
    "/trace?scenario=getpid",
    "/api/scenarios",
    "/api/runs/getpid/steps/3",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/trapscope.css",
    "/static/favicon.svg",
    *sorted(vendor_urls().values())[:3],
    "/nothing/here",  # a 404 answers HEAD as a 404, not a 405
]


@pytest.mark.parametrize("path", HEAD_PATHS)
def test_head_answers_wherever_get_does_with_the_same_headers_and_no_body(client, path):
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code != 405
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-encoding") == got.headers.get("content-encoding")
    if path != "/metrics":  # /metrics has counted the GET just made
        assert head.headers["content-length"] == got.headers["content-length"]
    assert_security_headers(head)


def test_head_on_a_rooms_event_stream_answers_its_headers_and_ends(client):
    created = client.post("/rooms", data={"url": "/scenarios/getpid?step=1", "title": ""})
    code = re.search(r"room=([A-Z0-9]+)", created.headers["location"]).group(1)
    answers = []
    worker = threading.Thread(target=lambda: answers.append(client.head(f"/rooms/{code}/events")), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert answers, "HEAD on an event stream never ended"
    assert answers[0].status_code == 200 and answers[0].content == b""
    assert answers[0].headers["content-type"].startswith("text/event-stream")


def test_pages_may_be_framed_only_by_trapscope_unless_embedded(client, monkeypatch):
    assert "frame-ancestors 'self'" in client.get("/scenarios/getpid").headers["content-security-policy"]
    embedded = client.get("/scenarios/getpid?embed=1").headers["content-security-policy"]
    assert embedded.endswith("frame-ancestors * file:")  # a deck opened from a file too (issue 15.5)
    monkeypatch.setenv("TRAPSCOPE_FRAME_ANCESTORS", "https://slides.example.org 'self'")  # read as a server starts:
    policy = client.get("/scenarios/getpid?embed=1&step=2").headers["content-security-policy"]  # a page not cached
    assert policy.endswith("frame-ancestors https://slides.example.org 'self'")
    assert "frame-ancestors 'self'" in client.get("/scenarios/getpid").headers["content-security-policy"]


def test_readyz_says_ready_and_each_check_can_say_otherwise(app, client):
    assert client.get("/readyz").json()["status"] == "ready"

    async def queue_full() -> tuple[bool, str]:
        return False, "the recording queue is full"

    app.state.readiness_checks.append(queue_full)
    app.state.readiness_checks.append(lambda: (True, "fine"))
    try:
        response = client.get("/readyz")
    finally:
        del app.state.readiness_checks[-2:]
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reasons": ["the recording queue is full"]}
    assert client.get("/healthz").status_code == 200  # alive all the same


class StoppingServer:
    """What uvicorn's Server looks like to the app once SIGTERM has arrived: its handler set `should_exit`."""

    should_exit = True

    def handle_exit(self, sig, frame) -> None:  # pragma: no cover - never delivered
        pass


def test_readyz_is_503_once_the_server_is_told_to_stop(client):
    previous = signal.signal(signal.SIGTERM, StoppingServer().handle_exit)
    try:
        response = client.get("/readyz")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert response.status_code == 503
    assert response.json()["reasons"] == ["shutting down"]
    assert response.headers["retry-after"]
    assert client.get("/readyz").status_code == 200


def test_the_schema_is_where_clients_look_and_the_old_address_redirects(client):
    assert client.get("/openapi.json").json()["info"]["title"] == "trapscope"
    moved = client.get("/api/openapi.json")
    assert moved.status_code == 308 and moved.headers["location"] == "/openapi.json"


HUGE = "7" * 60_000


@pytest.mark.parametrize(
    "path",
    [
        f"/scenarios/getpid?step={HUGE}",
        f"/scenarios/dd-system-time?bs={HUGE}",
        f"/vendor/{HUGE}.js",
        f"/api/runs/getpid/steps/{HUGE}",
        f"/api/runs?command=getpid&profile={HUGE}",
    ],
)
def test_an_error_quotes_at_most_a_short_prefix_of_a_bad_value(client, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert len(response.content) < 8_000  # was 121 KB for a 60 KB query
    runs = re.findall(r"7{10,}", response.text)
    assert runs and max(len(run) for run in runs) <= MAX_QUOTED


def test_the_access_log_is_one_short_json_line_a_request_without_the_query(client, caplog):
    with caplog.at_level(logging.INFO, logger="trapscope.access"):
        client.get(f"/scenarios/getpid?step=secret{HUGE}")
        client.head("/scenarios/" + "x" * 5000)
    lines = [record.getMessage() for record in caplog.records if record.name == "trapscope.access"]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["method"] == "GET" and first["route"] == "/scenarios/{slug}" and first["status"] == 422
    assert first["path"] == "/scenarios/getpid" and first["bytes"] > 100 and first["ms"] > 0
    assert second["method"] == "HEAD" and second["status"] == 404 and second["bytes"] == 0
    assert len(second["path"]) <= 200 and second["path"].endswith("…")
    assert all(len(line) < 400 and "secret" not in line for line in lines)
