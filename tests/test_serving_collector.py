"""The serving process's garbage collector (app/collector.py): a cached run leaves the collector almost nothing to
walk, and a server that records in a child collects its young generation often, with its start-up objects frozen."""

from __future__ import annotations

import gc

import msgspec
import pytest
from fastapi.testclient import TestClient

from app.collector import SERVING_THRESHOLDS
from app.main import create_app, web_record
from app.recorder_process import pack, unpack
from app.runs import CachedRun
from app.stepper import PrepareStepper
from sim.run import RunSpec

DD = RunSpec("dd if=/dev/zero of=/dev/null bs=1m count=2")  # 33,222 events


def _tracked_reachable(root: object) -> int:
    """How many objects reachable from `root` the collector tracks (walks in a full collection)."""
    seen, tracked, todo = set(), 0, [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type | type(gc)):
            continue
        seen.add(id(obj))
        tracked += gc.is_tracked(obj)
        todo.extend(
            [getattr(obj, name) for name in obj.__struct_fields__]
            if isinstance(obj, msgspec.Struct)
            else gc.get_referents(obj)
        )
    return tracked


def test_a_cached_run_leaves_the_collector_few_objects_to_walk() -> None:
    here = CachedRun(web_record(DD))
    PrepareStepper("dd-system-time")(here)
    there = unpack(pack(here))  # as the server holds it
    for _ in range(2):  # the collector's first looks: a tuple of untracked values is untracked from then on
        gc.collect()
    events = len(there.run.events)
    tracked = _tracked_reachable((there.run, there.replay, there.derived_views()))
    # 7,507 before: the latency view's slices and episodes (~6% of a dd run's events) and the replay's keyed
    # histories were objects and lists that every full collection walked for as long as the run was cached.
    assert tracked < events / 20, f"{tracked} tracked objects for {events} events"


@pytest.fixture
def collector_restored():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_server_recording_in_a_child_collects_young_objects_often_and_freezes_its_own(
    monkeypatch: pytest.MonkeyPatch, collector_restored: None
) -> None:
    monkeypatch.setenv("TRAPSCOPE_RECORDER", "thread")
    with TestClient(create_app()):
        assert gc.get_threshold() != SERVING_THRESHOLDS and gc.get_freeze_count() == 0, "it records here: untouched"
    monkeypatch.setenv("TRAPSCOPE_RECORDER", "process")
    with TestClient(create_app()):
        assert gc.get_threshold() == SERVING_THRESHOLDS
        assert gc.get_freeze_count() > 10_000  # modules, classes, functions: not walked again
