"""Return-to-user work (sys/kern/subr_trap.c, FreeBSD 11): userret() and ast().

Almost all of it "largely never happens" (the lecture): each piece is behind a per-thread or per-process flag,
tested on the way out, so the common case pays a handful of tests.
"""

from __future__ import annotations

from sim.core.events import Ast
from sim.core.kfunc import gate, kfunc
from sim.core.pcpu import pcpu
from sim.kern.proc import (
    AST_FLAGS,
    P_PROFIL,
    TDF_ALRMPEND,
    TDF_NEEDRESCHED,
    TDF_NEEDSIGCHK,
    TDF_NEEDSUSPCHK,
    TDF_PROFPEND,
    TDP_GEOM,
    TDP_OLDMASK,
    Thread,
)


@kfunc
def userret(td: Thread, frame) -> None:
    machine, kernel = pcpu.machine, pcpu.kernel
    p = td.td_proc
    if gate("KTRUSERRET", None, kernel.config.ktrace):
        ktruserret(td)
    if gate("g_waitidle", None, bool(td.td_pflags & TDP_GEOM)):
        g_waitidle()
    if gate("addupc_task", None, bool(p.p_flag & P_PROFIL)):
        addupc_task(td)
    sched_userret(td)
    machine.log.now += machine.profile.flag_test_ns  # the INVARIANTS assertions that follow on a debug kernel
    if gate("racct throttle", None, p.p_throttled != 0):
        racct_throttle(td)


@kfunc
def ast(framep) -> None:
    """Handle the asynchronous work flagged in td_flags: reschedule, signals, single-threading, ..."""
    from sim.kern.kern_sig import SIGPROF, SIGVTALRM, cursig, kern_psignal, kern_sigprocmask_setmask, postsig
    from sim.kern.kern_synch import mi_switch
    from sim.kern.sched import SW_INVOL, SWT_NEEDRESCHED, set_td_flags

    td = pcpu.curthread
    p = td.td_proc
    flags = td.td_flags
    # Clear the bits in one step, so an AST posted while these are handled sets them again and is not lost.
    set_td_flags(td, flags & ~AST_FLAGS)
    pcpu.machine.emit("hook", "ast", Ast(flags))
    if gate("SIGVTALRM", None, bool(flags & TDF_ALRMPEND)):
        kern_psignal(p, SIGVTALRM)
    if gate("SIGPROF", None, bool(flags & TDF_PROFPEND)):
        kern_psignal(p, SIGPROF)
    if gate("mi_switch", None, bool(flags & TDF_NEEDRESCHED)):
        td.td_priority = td.td_user_pri  # sched_prio(td, td->td_user_pri)
        mi_switch(SW_INVOL | SWT_NEEDRESCHED)
    if gate("postsig", None, bool(flags & TDF_NEEDSIGCHK) or bool(p.p_siglist | td.td_siglist)):
        while sig := cursig(td):
            postsig(sig)
    if gate("thread_suspend_check", None, bool(flags & TDF_NEEDSUSPCHK)):
        thread_suspend_check(td)
    if gate("TDP_OLDMASK", None, bool(td.td_pflags & TDP_OLDMASK)):
        td.td_pflags &= ~TDP_OLDMASK
        kern_sigprocmask_setmask(td, td.td_oldsigmask)
    userret(td, framep)


@kfunc
def sched_userret(td: Thread) -> None:
    """The scheduler restores the thread's user priority (it may have been lent a higher one in the kernel)."""
    machine = pcpu.machine
    machine.log.now += machine.profile.sched_userret_ns
    if td.td_priority != td.td_user_pri:
        td.td_priority = td.td_user_pri


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
