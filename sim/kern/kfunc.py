"""Marks a modelled kernel function: entering and leaving it are recorded as frame events.

Those frame events are what the call-stack view, DTrace's fbt provider and the flame graphs are built from.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from sim.kern.pcpu import pcpu

F = TypeVar("F", bound=Callable)


def kfunc(fn: F) -> F:
    name = fn.__name__

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        log = pcpu.machine.log  # hot: one frame pair per modelled call, so Machine.enter/exit are inlined
        log.depth += 1
        log.emit("enter", name)
        rv = fn(*args, **kwargs)
        log.emit("exit", name, "" if rv is None or not log.recording else str(rv))
        log.depth -= 1
        return rv

    return traced  # type: ignore[return-value]


def gate(hook: str, condition: str, is_set: bool) -> bool:
    """Charge one flag test for a normally-off hook; record it as skipped when its flag is clear.

    This is the lecture's "making all of this nothing fast": a disabled hook costs only this test.
    """
    machine = pcpu.machine
    log = machine.log
    log.now += machine.profile.flag_test_ns
    if not is_set:
        log.emit("skip", hook, condition)
    return is_set
