"""`kernel-bug user|null`: ask the lecture-demo module (sim/kern/kld_bugs.py) to make one of its mistakes.

kernel-bug user   the kernel reads an int through the program's own pointer, without copyin: silently on a
                  machine without SMAP (FreeBSD 11), a fatal page fault with CR4.SMAP set
kernel-bug null   the kernel reads a field through a NULL pointer: "Fatal trap 12" and a panic
"""

from __future__ import annotations

from sim.kern.kld_bugs import L41_BUG_NULL_DEREF, L41_BUG_USER_DEREF
from sim.user import umem
from sim.user.lecture_programs import err, getopt, printf
from sim.user.libc import Libc
from sim.user.libc_proc import stack_locals
from sim.user.programs import program
from sim.user.shell import CommandLineError

USAGE = "kernel-bug user|null"
BUGS = {"user": L41_BUG_USER_DEREF, "null": L41_BUG_NULL_DEREF}
SECRET = 0x4C343121  # what the program stores where it points the kernel: "!14L" in memory


def _bug(argv: tuple[str, ...]) -> int:
    _, operands = getopt(argv, USAGE, operands=1)
    if not operands or operands[0] not in BUGS:
        given = f"unknown bug {operands[0]!r}" if operands else "name a bug"
        raise CommandLineError(f"{argv[0]}: {given}\nusage: {USAGE}")
    return BUGS[operands[0]]


def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
    _bug(argv)


@program(
    "kernel-bug",
    "a lecture-demo kernel module's mistakes: `user` reads through a user pointer without copyin (silent "
    "without SMAP, a fatal trap with it), `null` reads through a NULL pointer (Fatal trap 12)",
    validate=validate,
)
def kernel_bug_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    bug = _bug(argv)
    with stack_locals(libc, 8) as buf:
        umem.store(buf, SECRET.to_bytes(4, "little"))
        printf(libc, f"l41_bug({bug}, {buf:#x}): the kernel is about to dereference a pointer directly\n")
        value = libc.syscall("l41_bug", bug, buf)
    if value == -1:
        err(libc, 1, argv[0], "l41_bug")
    printf(libc, f"l41_bug returned {value & 0xFFFFFFFF:#x}: the kernel read the user's memory without copyin\n")
    return 0
