"""Process exit (sys/kern/kern_exit.c): _exit() never returns."""

from __future__ import annotations

from sim.kern.kernel import syscall_handler
from sim.kern.kfunc import kfunc
from sim.kern.pcpu import pcpu
from sim.kern.proc import Thread


class ThreadExited(Exception):
    """The thread left the CPU for good: unwinds the simulated thread's Python stack."""


def W_EXITCODE(ret: int, sig: int) -> int:  # noqa: N802 - sys/sys/wait.h
    return (ret << 8) | sig


@syscall_handler
@kfunc
def sys_exit(td: Thread, rval: int) -> int:
    exit1(td, rval & 0xFF, 0)
    raise AssertionError("exit1 returned")


@kfunc
def exit1(td: Thread, rval: int, signo: int) -> None:
    p = td.td_proc
    p.p_exitstatus = W_EXITCODE(rval, signo)
    pcpu.machine.emit("proc", "exit", f"pid {p.p_pid} ({p.p_comm}) exits with status {rval}")
    raise ThreadExited()
