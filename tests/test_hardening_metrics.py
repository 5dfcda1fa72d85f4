"""Prometheus metrics at /metrics: requests by route template and status, latency, the run cache, recordings,
rooms and followers; and, with PROMETHEUS_MULTIPROC_DIR, the sum over several worker processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.serving import prepare_metrics_dir

ROOT = Path(__file__).resolve().parent.parent


def scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) -> value, from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def client():
    with TestClient(create_app(), follow_redirects=False) as client:
        yield client


def test_requests_are_counted_and_timed_by_route_template_never_by_url(client):
    before = scrape(client)
    client.get("/scenarios/getpid?step=2")
    client.head("/scenarios/getpid")
    client.get("/scenarios/no-such-scenario-q7")
    client.get("/no/such/page-q7")
    after = scrape(client)
    route = "/scenarios/{slug}"
    for method, status in [("GET", "200"), ("HEAD", "200"), ("GET", "404")]:
        labels = {"method": method, "route": route, "status": status}
        counted = value(after, "trapscope_http_requests_total", **labels)
        assert counted == value(before, "trapscope_http_requests_total", **labels) + 1, labels
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "trapscope_http_requests_total", **unmatched) >= 1
    timed = {"method": "GET", "route": route}
    assert value(after, "trapscope_http_request_duration_seconds_count", **timed) >= 2
    assert value(after, "trapscope_http_request_duration_seconds_sum", **timed) > 0
    assert "q7" not in client.get("/metrics").text  # no URL, so no unbounded label values


def test_run_cache_hits_and_misses_and_recordings_are_counted(client):
    before = scrape(client)
    client.get("/api/runs/eintr/steps/1")  # a fresh app: recorded now
    client.get("/api/runs/eintr/steps/2")  # cached
    after = scrape(client)
    for result in ("miss", "hit"):
        counted = value(after, "trapscope_run_cache_lookups_total", result=result)
        assert counted == value(before, "trapscope_run_cache_lookups_total", result=result) + 1, result
    assert ("trapscope_recordings_in_progress", frozenset()) in after  # 0 now: it is over
    assert ("trapscope_recordings_queued", frozenset()) in after


def test_rooms_open_and_followers_connected(client):
    assert value(scrape(client), "trapscope_rooms_open") == 0
    opened = client.post("/rooms", data={"url": "/scenarios/getpid?step=1", "title": ""})
    code = re.search(r"room=([A-Z0-9]+)", opened.headers["location"]).group(1)
    assert value(scrape(client), "trapscope_rooms_open") == 1
    before = value(scrape(client), "trapscope_room_followers_connected")
    with client.stream("GET", f"/rooms/{code}/events?v=0") as stream:
        lines = stream.iter_lines()  # kept: a dropped line iterator closes the stream
        assert next(lines) == "id: 1"  # the follower has its first event: its stream is open
        assert value(scrape(client), "trapscope_room_followers_connected") == before + 1
        client.post(f"/rooms/{code}/end")  # the stream ends with the room
    assert value(scrape(client), "trapscope_room_followers_connected") == before
    assert value(scrape(client), "trapscope_rooms_open") == 0


WORKER = """
import sys
from fastapi.testclient import TestClient
from app.main import create_app
from app.serving import prepare_metrics_dir
with TestClient(create_app()) as client:
    for _ in range(int(sys.argv[1])):
        assert client.get("/healthz").status_code == 200
    if sys.argv[2] == "scrape":
        print(client.get("/metrics").text)
"""


def test_several_worker_processes_report_their_sum(tmp_path):
    """Two workers sharing PROMETHEUS_MULTIPROC_DIR: either one's /metrics counts the other's requests too."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def worker(requests: int, scrape: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(requests), scrape], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    worker(3, "quiet")
    text = worker(4, "scrape")
    healthz = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "trapscope_http_requests_total" and sample.labels.get("route") == "/healthz"
    ]
    assert healthz == [7.0]


def test_serve_prepares_a_metrics_directory_for_several_workers(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert prepare_metrics_dir(1) is None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    made = prepare_metrics_dir(2)
    assert made.is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
    made.rmdir()
    stale = tmp_path / "counter_4242.db"
    stale.write_bytes(b"a previous server's counts")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert prepare_metrics_dir(1) == tmp_path and not stale.exists()
