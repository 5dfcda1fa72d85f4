"""Return-to-user work (sys/kern/subr_trap.c, FreeBSD 11): userret() and ast().

Almost all of it "largely never happens" (the lecture): each piece is behind a per-thread or per-process flag,
tested on the way out, so the common case pays a handful of tests.
"""

from __future__ import annotations

from sim.kern.kfunc import gate, kfunc
from sim.kern.pcpu import pcpu
from sim.kern.proc import (
    AST_FLAGS,
    P_PROFIL,
    TDF_NEEDRESCHED,
    TDF_NEEDSIGCHK,
    TDF_NEEDSUSPCHK,
    TDP_GEOM,
    Thread,
)


@kfunc
def userret(td: Thread, frame) -> None:
    machine, kernel = pcpu.machine, pcpu.kernel
    p = td.td_proc
    if gate("KTRUSERRET", "ktrace request queue empty", kernel.config.ktrace):
        ktruserret(td)
    if gate("g_waitidle", "(td->td_pflags & TDP_GEOM) == 0", bool(td.td_pflags & TDP_GEOM)):
        g_waitidle()
    if gate("addupc_task", "(p->p_flag & P_PROFIL) == 0", bool(p.p_flag & P_PROFIL)):
        addupc_task(td)
    sched_userret(td)
    machine.charge(machine.profile.flag_test_ns)  # the INVARIANTS assertions that follow on a debug kernel
    if gate("racct throttle", "p->p_throttled == 0", p.p_throttled != 0):
        racct_throttle(td)


@kfunc
def ast(framep) -> None:
    """Handle the asynchronous work flagged in td_flags: reschedule, signals, single-threading, ..."""
    td = pcpu.curthread
    flags = td.td_flags
    td.td_flags &= ~AST_FLAGS
    pcpu.machine.emit("hook", "ast", f"td_flags {flags:#x} cleared")
    if gate("mi_switch", "(flags & TDF_NEEDRESCHED) == 0", bool(flags & TDF_NEEDRESCHED)):
        pcpu.kernel.mi_switch(td)
    if gate("postsig", "no signal pending", bool(flags & TDF_NEEDSIGCHK) or pcpu.kernel.signal_pending(td)):
        pcpu.kernel.deliver_signals(td)
    if gate("thread_suspend_check", "(flags & TDF_NEEDSUSPCHK) == 0", bool(flags & TDF_NEEDSUSPCHK)):
        thread_suspend_check(td)
    userret(td, framep)


@kfunc
def sched_userret(td: Thread) -> None:
    """The scheduler restores the thread's user priority (it may have been lent a higher one in the kernel)."""
    pcpu.machine.charge(pcpu.machine.profile.sched_userret_ns)


@kfunc
def ktruserret(td: Thread) -> None:
    pcpu.machine.charge(pcpu.machine.profile.ktrace_record_ns)


@kfunc
def g_waitidle() -> None:
    pass


@kfunc
def addupc_task(td: Thread) -> None:
    pass


@kfunc
def racct_throttle(td: Thread) -> None:
    pass


@kfunc
def thread_suspend_check(td: Thread) -> None:
    pass
