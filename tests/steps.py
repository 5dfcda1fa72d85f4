"""Finding steps in a recorded run, for tests that check what a student sees at a given step."""

from __future__ import annotations

from sim.run import Run


def step_of(run: Run, kind: str, name: str, occurrence: int = 0) -> int:
    """The index of the `occurrence`-th event (from 0) of this kind and name."""
    matches = [i for i, e in enumerate(run.events) if e.kind == kind and e.name == name]
    return matches[occurrence]
