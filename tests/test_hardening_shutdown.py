"""Graceful shutdown of `trapscope serve`, a real server in a subprocess: on SIGTERM a request in flight finishes,
a follower's event stream ends cleanly (its browser reconnects, elsewhere if there is an elsewhere), the process
exits 0, and what it logged was one short JSON line a request."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.test_rooms_live import _free_port, _stop, _wait

ROOT = Path(__file__).resolve().parent.parent


def test_sigterm_lets_requests_finish_and_ends_event_streams(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAPSCOPE_REDIS_URL": ""}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        _wait(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, "trapscope serve", server, err)
        with httpx.Client(base_url=url, timeout=30) as client:
            opened = client.post("/rooms", data={"url": "/scenarios/getpid?step=1", "title": ""})
            code = re.search(r"room=([A-Z0-9]+)", opened.headers["location"]).group(1)
            assert client.get(opened.headers["location"]).status_code == 200  # the lecturer lands: getpid recorded

            follower: dict[str, object] = {}

            def follow() -> None:
                try:
                    with client.stream("GET", f"/rooms/{code}/events?v=0") as stream:
                        follower["lines"] = sum(1 for _ in stream.iter_lines())
                except httpx.HTTPError as error:
                    follower["error"] = error

            in_flight: dict[str, httpx.Response] = {}

            def record() -> None:  # an uncached run: ~1 s of recording
                in_flight["response"] = client.get("/api/runs/dd-system-time/steps/1")

            threads = [threading.Thread(target=follow, daemon=True), threading.Thread(target=record, daemon=True)]
            for thread in threads:
                thread.start()

            def recording_and_following() -> bool:  # SIGTERM only once both are in flight (a loaded CI machine)
                text = client.get("/metrics").text
                return (
                    "trapscope_recordings_in_progress 1.0" in text and "trapscope_room_followers_connected 1.0" in text
                )

            _wait(recording_and_following, "a recording and a follower", server, err)

            server.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            assert server.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
            for thread in threads:
                thread.join(timeout=5)
            assert time.monotonic() - stopped < 10  # well inside the graceful timeout
    finally:
        _stop(server)

    assert in_flight["response"].status_code == 200, "the request in flight was cut off"
    assert in_flight["response"].json()["step"] == 1
    assert "error" not in follower and follower["lines"] > 0, follower  # the stream ended, not broken
    logged = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(entry["route"] == "/api/runs/{scenario}/steps/{n}" and entry["status"] == 200 for entry in logged)
    assert any(entry["route"] == "/rooms/{code}/events" for entry in logged)
    assert "Traceback" not in err.read_text()
