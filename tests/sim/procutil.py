"""Helpers for the process-model tests: run a small C-like program written in Python on the simulated machine,
and find things in its event log."""

from __future__ import annotations

import struct
from collections.abc import Callable

from sim.kern.kernel import KernelConfig
from sim.run import Run, RunSpec, record
from sim.user import umem
from sim.user.libc import Libc
from sim.user.programs import PROGRAMS

PROT_RW = 0x3
MAP_PRIVATE_ANON = 0x0002 | 0x1000
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT = 0, 1, 2, 0x0200
AT_FDCWD = -100


def run_program(main: Callable, config: KernelConfig | None = None, profile: str = "lecture", **budgets) -> Run:
    """Record a run of main(libc, argv, env), installed for the run as a program named after it."""
    name = f"test-{main.__name__.replace('_', '-')}"
    PROGRAMS[name] = main
    try:
        return record(RunSpec(name, profile=profile, config=config or KernelConfig()), **budgets)
    finally:
        del PROGRAMS[name]


def buffer(libc: Libc, size: int = 4096) -> int:
    """Anonymous memory from mmap(2), as a C program's malloc'd buffer."""
    address = libc.syscall("mmap", 0, size, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    assert address != -1, "mmap failed"
    return address & ((1 << 64) - 1)


def cstring(libc: Libc, text: str) -> int:
    data = text.encode() + b"\0"
    address = buffer(libc, len(data))
    umem.store(address, data)
    return address


def open_path(libc: Libc, path: str, flags: int = O_RDONLY, mode: int = 0o644) -> int:
    """open(2) itself (not libc's openat): in capability mode it enters, and namei() refuses AT_FDCWD."""
    return libc.syscall("open", cstring(libc, path), flags, mode)


def read_int(address: int, size: int = 4) -> int:
    return int.from_bytes(umem.load(address, size), "little", signed=True)


def u32(data: bytes) -> int:
    return struct.unpack("<I", data)[0]


def events_named(run: Run, kind: str, name: str) -> list[int]:
    return [i for i, e in enumerate(run.events) if e.kind == kind and e.name == name]


def syscall_events(run: Run, name: str) -> list[int]:
    return events_named(run, "syscall", name)


def frame(run: Run, start: int, function: str) -> range:
    """The steps of the call of `function` that is entered at or after step `start`."""
    events = run.events
    begin = next(i for i in range(start, len(events)) if events[i].kind == "enter" and events[i].name == function)
    depth = events[begin].depth
    end = next(
        i for i in range(begin + 1, len(events)) if events[i].kind == "exit" and events[i].name == function
        and events[i].depth == depth
    )  # fmt: skip
    return range(begin, end + 1)
