"""How many bytes a cached run holds: its events, its replay and the views derived from it.

Measuring every object of a run (millions of events, each a tuple of tuples) would take longer than recording it,
so large containers are sampled: SAMPLE of their elements, spread evenly, are measured in depth and the total is
scaled to the container's length. The events of a run are alike (a few kinds of tuple), so the estimate is close;
tests/test_run_memory.py checks it against what tracemalloc sees the same objects take.
"""

from __future__ import annotations

import gc
import sys
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType

import msgspec

SAMPLE = 1000  # elements measured of a container longer than that
SHARED_REFS = 16  # an object referred to more often than this (a kind name, a shared detail) is counted once

# Shared by everything, owned by nothing: code, classes and modules are not part of a run.
_NOT_OWNED = (type, ModuleType, FunctionType, BuiltinFunctionType, MethodType)


def estimated_bytes(root: object) -> int:
    """Bytes of the objects reachable from `root` (each counted once), sampling containers longer than SAMPLE.

    A sampled element stands for `len / SAMPLE` elements, except an object many others share: it exists once
    whatever the sample's scale, so it is counted once.
    """
    seen: set[int] = set()
    total = 0.0
    stack: list[tuple[object, float]] = [(root, 1.0)]
    while stack:
        obj, weight = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, _NOT_OWNED):
            continue
        seen.add(id(obj))
        if sys.getrefcount(obj) > SHARED_REFS:
            weight = 1.0
        total += weight * sys.getsizeof(obj)
        children = _referents(obj)
        if len(children) <= SAMPLE:
            stack.extend((child, weight) for child in children)
        else:
            step = len(children) / SAMPLE
            stack.extend((children[int(i * step)], weight * step) for i in range(SAMPLE))
    return round(total)


def _referents(obj: object) -> list:
    """What obj refers to. An event or payload is a msgspec Struct the collector never tracks (sim/core/log.py),
    so gc.get_referents sees nothing in it: its fields are read instead."""
    if isinstance(obj, msgspec.Struct):
        return [getattr(obj, name) for name in obj.__struct_fields__]
    return gc.get_referents(obj)
