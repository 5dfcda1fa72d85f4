"""The simulated programs a command line can run, by name."""

from __future__ import annotations

import re
from collections.abc import Callable

from sim.user.libc import Libc
from sim.user.shell import CommandLineError

Program = Callable[[Libc, tuple[str, ...], dict[str, str]], int]
PROGRAMS: dict[str, Program] = {}


Validator = Callable[[tuple[str, ...], dict[str, str]], None]


def program(
    name: str, summary: str, validate: Validator | None = None, image: str | None = None, static: bool = False
) -> Callable[[Callable], Callable]:
    """Register a program. With `image`, `fn` is a C-like main(rt, argv, env) that crt.start() wraps in the
    program's start-up (the run-time linker for a dynamic image); `validate` checks argv before a run starts."""

    def register(fn: Callable) -> Callable:
        entry = fn
        if image is not None:
            from sim.user import crt

            entry = crt.start(fn, image, static)
        entry.summary = summary  # type: ignore[attr-defined]
        entry.image = image  # type: ignore[attr-defined]  # the ELF image its process is made from
        entry.validate = validate  # type: ignore[attr-defined]
        PROGRAMS[name] = entry
        return fn

    return register


def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
    """Check a command line's operands before the run starts: the program's own usage errors, as
    CommandLineError."""
    check = getattr(lookup(argv[0]), "validate", None)
    if check is not None:
        check(argv, env)


def check_limits(prog: str, limits: tuple[tuple[str, int, int], ...]) -> None:
    """The simulator's own limits on a program's sizes, each (flag, value, limit): a CommandLineError naming the
    first that is passed (the program's own usage errors are its own, made in the run)."""
    for flag, value, limit in limits:
        if value > limit:
            raise CommandLineError(f"{prog}: {flag} {value}: the simulated machine runs at most {limit:,} here")


def lookup(name: str) -> Program:
    if name not in PROGRAMS:
        known = ", ".join(sorted(PROGRAMS))
        raise CommandLineError(f"{name}: no such program in the simulated system (programs: {known})")
    return PROGRAMS[name]


MAX_LOOP = 1_000_000  # 53 steps a call: a million calls stays within a run's step budget (sim/run.py)


@program("getpid", "calls getpid() through libc COUNT times (default 1) and exits")
def getpid_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    usage = "usage: getpid [COUNT]"
    if len(argv) > 2:
        raise CommandLineError(f"getpid: unexpected operand {argv[2]!r} ({usage})")
    count = 1
    if len(argv) == 2:
        if not re.fullmatch(r"[0-9]{1,18}", argv[1]) or not 1 <= int(argv[1]) <= MAX_LOOP:
            raise CommandLineError(f"getpid: COUNT must be a whole number from 1 to {MAX_LOOP:,}, not {argv[1]!r}")
        count = int(argv[1])
    for _ in range(count):
        libc.getpid()
    return 0


# The programs in their own modules register themselves when imported.
from sim.user import dd, ipc_benchmark, ipc_benchmark_xo, kernel_bugs, lecture_files, lecture_more, lecture_programs  # noqa: E402, F401  isort: skip
from sim.user import io_benchmark  # noqa: E402, F401  isort: skip
