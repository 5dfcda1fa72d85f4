"""nosys: the handler of every system-call number with no implementation (sys/kern/kern_syscalls.c)."""

from __future__ import annotations

from sim.kern.errno import ENOSYS
from sim.kern.kfunc import kfunc
from sim.kern.proc import Thread


@kfunc
def nosys(td: Thread, *args: int) -> int:
    # FreeBSD also posts SIGSYS here; its default action (core dump) arrives with the signal model.
    return ENOSYS
