"""Recorded scenario runs, and finding steps in them, for tests that check what a student sees at a given step."""

from __future__ import annotations

from functools import cache

from sim.run import Run, record
from sim.scenarios.registry import lookup


@cache
def scenario_run(slug: str) -> Run:
    """The built-in scenario's run, recorded once per test session (a run is immutable)."""
    return record(lookup(slug).spec())


def step_of(run: Run, kind: str, name: str, occurrence: int = 0) -> int:
    """The index of the `occurrence`-th event (from 0) of this kind and name."""
    matches = [i for i, e in enumerate(run.events) if e.kind == kind and e.name == name]
    return matches[occurrence]
