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


@program("getpid", "calls getpid() once through libc and exits")
def getpid_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    if len(argv) > 1:
        raise CommandLineError(f"getpid: unexpected operand {argv[1]!r} (usage: getpid)")
    libc.getpid()
    return 0
