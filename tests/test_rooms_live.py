"""Live rooms end to end over real HTTP: a follower's event stream receives what the lecturer does.

Two set-ups, the same checks: one app process with the in-process broker (the embedded default), and two app
processes sharing rooms through a real redis-server (Debian's package; `make test` installs it). In the second the
lecturer drives process A while the student follows and answers on process B: B's stream carries A's steps, and
A's tally counts B's answers. Each server is started here on a free loopback port and stopped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import aio

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
STARTUP_S = 60.0
EVENT_WAIT_S = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(check, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} did not start (exit {process.poll()}); log {log}:\n{log.read_text()[-3000:]}", pytrace=False)


def _app(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "2"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: httpx.get(url + "/healthz", timeout=2).status_code == 200, f"app {name}", process, log)
    return process, url


def _redis(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail("redis-server not found: run `make setup-test` (it apt-get installs Debian's redis-server)")
    port = _free_port()
    log = tmp_path / "redis.log"
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--daemonize", "no", "--dir", str(tmp_path)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    _wait(pong, "redis-server", process, log)
    return process, f"redis://127.0.0.1:{port}/0"


@pytest.fixture(params=["in-process", "redis"])
def servers(request, tmp_path: Path) -> Iterator[tuple[str, str, str | None]]:
    """(lecturer's server, student's server, redis URL or None): one app, or two apps sharing a redis-server."""
    started: list[subprocess.Popen] = []
    try:
        if request.param == "in-process":
            app, url = _app(tmp_path, "app", {"TRAPSCOPE_REDIS_URL": ""})
            started.append(app)
            yield url, url, None
        else:
            redis, redis_url = _redis(tmp_path)
            started.append(redis)
            env = {"TRAPSCOPE_REDIS_URL": redis_url}
            for name in ("a", "b"):
                started.append(_app(tmp_path, name, env)[0])
            urls = [f"http://127.0.0.1:{p.args[p.args.index('--port') + 1]}" for p in started[1:]]
            yield urls[0], urls[1], redis_url
    finally:
        for process in reversed(started):
            _stop(process)


class Stream(threading.Thread):
    """A follower's event stream, read in the background: each event's (id, event, data) goes into `events`."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        super().__init__(daemon=True)
        self.client, self.url = client, url
        self.events: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.status: int | None = None

    def run(self) -> None:
        try:
            with self.client.stream("GET", self.url, headers={"Accept": "text/event-stream"}, timeout=None) as r:
                self.status = r.status_code
                event_id, name, data = "", "", []
                for line in r.iter_lines():
                    if not line:
                        if data or name:
                            self.events.put((event_id, name, "\n".join(data)))
                        event_id, name, data = "", "", []
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("event:"):
                        name = line[6:].strip()
        except httpx.HTTPError:
            pass

    def next(self, containing: str) -> tuple[str, str, str]:
        """The next event whose data contains `containing` (pings and other events are passed over)."""
        deadline = time.monotonic() + EVENT_WAIT_S
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if containing in event[2]:
                return event
        pytest.fail(f"no event with {containing!r} within {EVENT_WAIT_S} s", pytrace=False)


def _eventually(check, what: str) -> None:
    deadline = time.monotonic() + EVENT_WAIT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {EVENT_WAIT_S} s", pytrace=False)


def test_a_follower_receives_the_lecturers_steps_and_the_tally_counts_its_answer(servers):
    lecturer_url, student_url, redis_url = servers
    with (
        httpx.Client(base_url=lecturer_url, follow_redirects=False) as lecturer,
        httpx.Client(base_url=student_url, follow_redirects=False) as student,
        httpx.Client(base_url=student_url) as listener,
    ):
        opened = lecturer.post("/rooms", data={"url": "/scenarios/read-kernel-pointer?step=3"})
        assert opened.status_code == 303
        lead_url = opened.headers["location"]
        code = re.search(r"room=([A-Z0-9]+)", lead_url).group(1)
        if redis_url is not None:
            import redis

            ttl = redis.Redis.from_url(redis_url).ttl(f"trapscope:room:{code}")
            assert 0 < ttl <= 15 * 60  # no lecturer's page has kept it alive yet: it ends soon if left

        page = student.get(f"/rooms/{code}")  # served by the other process, from the shared state
        assert page.status_code == 200 and 'data-step="3"' in page.text
        version = int(re.search(r"/events\?v=(\d+)", page.text).group(1))
        listener.cookies.update(student.cookies)
        stream = Stream(listener, f"/rooms/{code}/events?v={version}")
        stream.start()
        _eventually(lambda: "1 following" in lecturer.get(lead_url).text, "the lecturer sees the follower")

        step5 = f"/scenarios/read-kernel-pointer?room={code}&step=5"
        assert lecturer.post(f"/rooms/{code}/drive", data={"url": step5}).status_code == 204
        event_id, _, html = stream.next('data-step="5"')
        assert event_id == str(version + 1)
        assert '<hx-partial hx-target="#step-panel"' in html  # the same run and views: only the step panel

        views = f"/scenarios/read-kernel-pointer?room={code}&step=6&views=cpu"
        assert lecturer.post(f"/rooms/{code}/drive", data={"url": views}).status_code == 204
        _, _, html = stream.next('data-step="6"')
        assert '<hx-partial hx-target="#stepper"' in html  # other views: the whole stepper

        assert lecturer.post(f"/rooms/{code}/question", data={"kind": "errno"}).status_code == 200
        _, _, html = stream.next("What will the next system call return?")
        assert "Answer:" not in html
        question = re.search(r'name="question" value="([0-9a-f]+)"', html).group(1)
        with httpx.Client(base_url=student_url, follow_redirects=False) as stuffer:  # fresh cookies, no stream
            assert stuffer.get(f"/rooms/{code}").status_code == 200
            refused = stuffer.post(f"/rooms/{code}/answer", data={"question": question, "choice": "success"})
            assert refused.status_code == 403
        answered = student.post(f"/rooms/{code}/answer", data={"question": question, "choice": "EFAULT"})
        assert answered.status_code == 200
        assert "1 answer</strong>" in lecturer.get(lead_url).text  # counted where the lecturer is

        assert lecturer.post(f"/rooms/{code}/reveal").status_code == 200
        _, _, html = stream.next("Answer: success")
        assert "EFAULT 1" in html

        if redis_url is not None:
            ttl = redis.Redis.from_url(redis_url).ttl(f"trapscope:room:{code}")
            assert 15 * 60 < ttl <= 2 * 60 * 60  # the state lives in Redis, with the driven room's expiry

        # a follower who reconnects after missing steps lands on the current one
        late = Stream(listener, f"/rooms/{code}/events?v=1")
        late.start()
        _, _, html = late.next('data-step="6"')
        assert '<hx-partial hx-target="#stepper"' in html and "Answer: success" in html

        assert lecturer.post(f"/rooms/{code}/end").status_code == 303
        assert stream.next("ended")[1] in ("", "ended")
        assert student.get(f"/rooms/{code}").status_code == 404


def test_a_crowd_joining_at_once_waits_for_redis_connections_rather_than_failing(tmp_path: Path):
    # 150 followers joining one worker at once each ask Redis something while the others' commands are in flight:
    # more at once than a connection pool holds. They wait for a connection (the benchmark's 500s were "Too many
    # connections" from redis-py's default pool, which fails instead).
    from app.broker import REDIS_CONNECTIONS, RedisBroker

    redis, url = _redis(tmp_path)

    async def crowd() -> list[str | None]:
        broker = RedisBroker(url)
        try:
            await broker.set("trapscope:room:K7QXM", "{}", 60)
            return await asyncio.gather(*(broker.get("trapscope:room:K7QXM") for _ in range(5 * REDIS_CONNECTIONS)))
        finally:
            await broker.close()

    try:
        assert aio.run(crowd()) == ["{}"] * (5 * REDIS_CONNECTIONS)
    finally:
        redis.terminate()
        redis.wait(timeout=10)
