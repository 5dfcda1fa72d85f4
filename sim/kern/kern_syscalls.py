"""nosys: the handler of every system-call number with no implementation (sys/kern/kern_syscalls.c)."""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.kern.errno import ENOSYS
from sim.kern.proc import Thread


@kfunc
def nosys(td: Thread, *args: int) -> int:
    """A number with no system call: SIGSYS (whose default action kills the process), and ENOSYS for a
    process that ignores or catches it."""
    from sim.kern.kern_sig import SIGSYS, tdsignal

    tdsignal(td, SIGSYS)
    return ENOSYS
