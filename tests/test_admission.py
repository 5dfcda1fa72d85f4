"""Recordings run behind admission control (app/admission.py): their own threads, a bounded queue, a 503 with
Retry-After beyond it, and steps of cached runs served while every recording thread is busy."""

from __future__ import annotations

import asyncio
import re
import threading

import anyio
import pytest
from fastapi.testclient import TestClient

from app.admission import RecordingPool, RecordingsBusy
from app.main import create_app
from app.runs import RunCache
from sim.run import RunSpec, record
from tests import aio

PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel"}
GUARD_S = 30  # a hang guard only: a step that waits behind a recording would wait until the gate opens
GATED = "fork"  # the command whose recording blocks until the test opens the gate


class Gate:
    """A recorder that holds the recording of GATED until opened, and says which thread recorded it."""

    def __init__(self) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()
        self.thread_name = ""

    def record(self, spec: RunSpec):
        if spec.command == GATED:
            self.thread_name = threading.current_thread().name
            self.entered.set()
            self.opened.wait(GUARD_S)
        return record(spec)


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.opened.set()


@pytest.fixture
def busy_app(gate):
    """The app with one recording thread and no queue: a second new run while one records is refused."""
    app = create_app()
    app.state.runs = RunCache(recorder=gate.record, pool=RecordingPool(threads=1, queue=0))
    return app


async def _one_default_thread() -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = 1  # starlette's threadpool, for everything else


def test_a_cached_step_is_served_while_every_recording_thread_is_busy_and_new_runs_get_503(busy_app, gate):
    with TestClient(busy_app) as client:
        client.portal.call(_one_default_thread)
        assert client.get("/scenarios/getpid?step=3", headers=PANEL).status_code == 200  # getpid is cached now
        recording: dict[str, object] = {}
        opener = threading.Thread(target=lambda: recording.update(r=client.get("/scenarios/fork-returns-twice")))
        opener.start()
        assert gate.entered.wait(GUARD_S)
        assert gate.thread_name.startswith("recording"), "recordings run in their own threads"

        refused = client.get("/scenarios/eintr")
        assert refused.status_code == 503
        assert re.fullmatch(r"[0-9]+", refused.headers["retry-after"]) and int(refused.headers["retry-after"]) >= 1
        assert "recording as many new runs as it takes at once (1 recording and 0 waiting)" in refused.text
        busy = client.get("/readyz")
        assert busy.status_code == 503 and busy.json()["status"] == "unavailable"
        assert busy.json()["reasons"] == ["recording queue full: 1 recording on 1 threads, 0 waiting of 0"]

        stepped: dict[str, object] = {}
        stepper = threading.Thread(
            target=lambda: stepped.update(r=client.get("/scenarios/getpid?step=5", headers=PANEL))
        )
        stepper.start()
        stepper.join(GUARD_S)
        assert not gate.opened.is_set() and "r" in stepped, "the step did not wait for the recording"
        assert stepped["r"].status_code == 200 and 'data-step="5"' in stepped["r"].text

        gate.opened.set()
        opener.join(GUARD_S)
        assert recording["r"].status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert client.get("/scenarios/eintr").status_code == 200, "admitted again once a thread is free"


def test_the_api_and_the_trace_pages_are_behind_the_same_admission(busy_app, gate):
    with TestClient(busy_app) as client:
        opener = threading.Thread(target=lambda: client.get("/scenarios/fork-returns-twice"))
        opener.start()
        assert gate.entered.wait(GUARD_S)
        assert client.get("/api/runs", params={"command": "getpid 7"}).status_code == 503
        gate.opened.set()
        opener.join(GUARD_S)


def test_the_pool_admits_threads_plus_queue_and_counts_what_waits():
    async def scenario() -> None:
        pool = RecordingPool(threads=1, queue=1)
        release = threading.Event()
        first = asyncio.ensure_future(pool.run(release.wait, GUARD_S))
        second = asyncio.ensure_future(pool.run(lambda: "second"))
        await asyncio.sleep(0)
        assert (pool.load().running, pool.load().waiting, pool.load().full) == (1, 1, True)
        with pytest.raises(RecordingsBusy) as refused:
            await pool.run(lambda: "third")
        assert refused.value.status_code == 503 and refused.value.headers["Retry-After"].isascii()
        second.cancel()  # its requester left while it waited: its place is given back
        await asyncio.sleep(0.05)
        assert pool.load().waiting == 0
        release.set()
        assert await first is True
        assert await pool.run(lambda: "after") == "after"
        assert pool.load().running == 0

    aio.run(scenario())


@pytest.mark.parametrize("value", ["many", "²", "-1", "12345678"])
def test_a_malformed_pool_size_in_the_environment_is_named(monkeypatch, value):
    monkeypatch.setenv("TRAPSCOPE_RECORDING_QUEUE", value)
    with pytest.raises(ValueError, match="TRAPSCOPE_RECORDING_QUEUE must be a whole number"):
        RecordingPool.from_env()


def test_the_pool_sizes_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRAPSCOPE_RECORDING_THREADS", "2")
    monkeypatch.setenv("TRAPSCOPE_RECORDING_QUEUE", "0")
    load = RecordingPool.from_env().load()
    assert (load.threads, load.queue) == (2, 0)


def test_a_new_run_is_recorded_and_indexed_in_one_admission(gate):
    """Admitted once, shown: the stepper's index is built in the recording's own turn, not queued (or refused)
    again behind the recordings that arrived meanwhile."""
    app = create_app()
    pool = RecordingPool(threads=1, queue=0)
    app.state.runs = RunCache(recorder=gate.record, pool=pool)
    admissions: list[str] = []
    run = pool.run

    async def counted(work, *args):
        admissions.append(getattr(work, "__name__", ""))
        return await run(work, *args)

    pool.run = counted
    with TestClient(app) as client:
        assert client.get("/scenarios/getpid?step=2").status_code == 200
        assert client.get("/scenarios/getpid?step=3", headers=PANEL).status_code == 200
    assert admissions == ["_cached_run"]
