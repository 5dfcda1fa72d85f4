"""The simulated programs a command line can run, by name."""

from __future__ import annotations

from collections.abc import Callable

from sim.user.libc import Libc
from sim.user.shell import CommandLineError

Program = Callable[[Libc, tuple[str, ...], dict[str, str]], int]
PROGRAMS: dict[str, Program] = {}


def program(name: str, summary: str) -> Callable[[Program], Program]:
    def register(fn: Program) -> Program:
        fn.summary = summary  # type: ignore[attr-defined]
        PROGRAMS[name] = fn
        return fn

    return register


def lookup(name: str) -> Program:
    if name not in PROGRAMS:
        known = ", ".join(sorted(PROGRAMS))
        raise CommandLineError(f"{name}: no such program in the simulated system (programs: {known})")
    return PROGRAMS[name]


MAX_LOOP = 10_000_000


@program("getpid", "calls getpid() through libc COUNT times (default 1) and exits")
def getpid_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    usage = "usage: getpid [COUNT]"
    if len(argv) > 2:
        raise CommandLineError(f"getpid: unexpected operand {argv[2]!r} ({usage})")
    count = 1
    if len(argv) == 2:
        if not argv[1].isdigit() or not 1 <= int(argv[1]) <= MAX_LOOP:
            raise CommandLineError(f"getpid: COUNT must be a whole number from 1 to {MAX_LOOP:,}, not {argv[1]!r}")
        count = int(argv[1])
    for _ in range(count):
        libc.getpid()
    return 0
