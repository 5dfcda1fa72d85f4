"""Memory given back: runs that leave the cache, or are refused, are freed; the cache is bounded by bytes.

Memory is measured as tracemalloc's current size after a full collection (what Python objects still hold), or as
resident memory from /proc/self/statm (what the server costs its host); runs go through the web app, as a
browser's requests would. bench/memory_runs.py measures resident memory over 30 big runs.
"""

from __future__ import annotations

import gc
import html
import os
import tracemalloc
import weakref

import pytest
from fastapi.testclient import TestClient

from app.main import create_app, web_record
from app.memory import estimated_bytes
from app.runs import DEFAULT_MAX_BYTES, DEFAULT_MAX_RUNS, CachedRun, RunCache
from app.stepper import stepper_run
from sim import run as sim_run
from sim.machine.machine import Machine
from sim.run import RunError, RunSpec, record
from sim.scenarios.registry import SCENARIOS

MiB = 1 << 20


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def no_collection():
    """Only reference counting frees anything while the test runs (this thread alone; the app never does this)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def machines(monkeypatch) -> list[weakref.ref]:
    """A weak reference to each machine a run is recorded on."""
    made: list[weakref.ref] = []

    class Watched(Machine):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            made.append(weakref.ref(self))

    monkeypatch.setattr(sim_run, "Machine", Watched)
    return made


@pytest.mark.parametrize("spec", [scenario.spec() for scenario in SCENARIOS.values()], ids=list(SCENARIOS))
def test_a_recorded_run_is_freed_by_reference_counting(spec, no_collection, machines):
    run = record(spec)
    assert gc.get_referrers(run.events) == [run], "the Run alone holds the events"
    assert [ref() for ref in machines] == [None], "the machine is freed as the run ends: no cycle keeps it"


def test_a_refused_run_is_freed_by_reference_counting(no_collection, machines):
    try:
        record(RunSpec("dd if=/dev/zero of=/dev/null bs=1k count=1000"), record_budget=5_000, event_budget=10_000)
    except RunError as refused:
        assert "exceeded its budget" in str(refused)
        assert refused.__context__ is None and refused.__cause__ is None, "no traceback of the simulator's frames"
    assert [ref() for ref in machines] == [None], "nothing is left once the refusal is handled"


def test_fifty_distinct_runs_through_the_web_app_leave_memory_flat():
    bound = 16 * MiB  # ~5 of these runs; the 50 together hold ~170 MB
    app = create_app()
    app.state.runs = RunCache(max_runs=50, recorder=web_record, max_bytes=bound)
    with TestClient(app) as client:

        def step_through(kib: int) -> None:
            command = f"dd if=/dev/zero of=/dev/null bs={kib}k count=1"
            assert client.get("/scenarios/command", params={"command": command}).status_code == 200

        for kib in range(240, 260, 4):  # fill the cache, and the allocator's arenas, once
            step_through(kib)
        gc.collect()
        tracemalloc.start()  # what the runs' objects hold, not blurred by the allocator's reuse and fragmentation
        try:
            for kib in range(260, 460, 4):
                step_through(kib)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        cache = app.state.runs
        assert cache.bytes_held <= bound and len(cache) < 10
    assert held <= bound + 8 * MiB, f"the 50 runs left {held / MiB:.0f} MiB allocated"


def test_refused_runs_free_their_memory_at_once():
    # dd with 1 KiB blocks takes ~75 steps a block: 20,000 blocks are ~1.5 M recorded steps (~270 MB) before the
    # web's limit refuses the run. Nothing of it may stay: not in the error, not in the last machine.
    app = create_app()
    with TestClient(app) as client:
        assert client.get("/scenarios/getpid").status_code == 200
        before = rss()
        for count in (20_000, 20_001):
            response = client.get(f"/scenarios/dd-system-time?bs=1k&count={count}")
            assert response.status_code == 400
            assert "ask for less work" in html.unescape(response.text)
        grown = rss() - before  # no gc.collect(): freed by reference counting, as it happens
    assert grown <= 64 * MiB, f"two refused runs left {grown / MiB:.0f} MiB resident"


def test_a_cached_run_reports_the_memory_it_holds():
    tracemalloc.start()
    try:
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        cached = CachedRun(record(RunSpec("dd if=/dev/zero of=/dev/null bs=1m count=1")))
        stepper_run(cached)
        gc.collect()
        measured = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # Within 1%, not equal: an object referred to just SHARED_REFS times counts once or by the sample's weight
    # depending on whether a caller's frame still holds it (app/memory.py), so two measures can differ slightly.
    assert abs(cached.nbytes - estimated_bytes((cached.run, cached.replay, cached._derived))) <= cached.nbytes // 100
    assert 0.8 * measured <= cached.nbytes <= 1.25 * measured, (cached.nbytes, measured)


def test_the_default_cache_holds_every_built_in_scenario():
    sizes = []
    for scenario in SCENARIOS.values():
        cached = CachedRun(record(scenario.spec()))
        stepper_run(cached)
        sizes.append(cached.nbytes)
    assert len(sizes) <= DEFAULT_MAX_RUNS
    assert sum(sizes) <= DEFAULT_MAX_BYTES / 2, "and room for a big run of the lecture's own beside them"


@pytest.mark.parametrize("operands", ["ibs=1g obs=4096", "ibs=4096 obs=1g"])
def test_dd_block_sizes_are_compared_as_numbers_and_refused_before_any_run(operands):
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        command = f"dd if=/dev/zero of=/dev/null {operands}"
        response = client.get("/scenarios/command", params={"command": command})
        assert len(client.app.state.runs) == 0, "refused before any recording"
    assert response.status_code == 422
    assert "must be from 1 byte to 32m on the web, not '1g'" in html.unescape(response.text)
