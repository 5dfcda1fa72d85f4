"""Sleeping and waking (sys/kern/kern_synch.c and sys/kern/subr_sleepqueue.c, FreeBSD 11).

A thread that must wait (for pipe data, a child's exit, a disk transfer) sleeps on a wait channel, any object
that names what it waits for; wakeup(channel) makes every sleeper on it runnable again. A sleep with PCATCH is
interruptible: a caught signal ends it early, and the sleep returns EINTR when the signal's handler was
installed without SA_RESTART, or ERESTART (the system call will run again) when it was installed with it, as
sleepq_catch_signals and sleepq_abort decide.
"""

from __future__ import annotations

from sim.core.events import Sleep, Wakeup
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.errno import EAGAIN
from sim.kern.kernel import syscall_handler
from sim.kern.proc import (
    TDF_SINTR,
    TDF_SLEEPABORT,
    TDF_TIMEOUT,
    TDS_INHIBITED,
    Thread,
)
from sim.kern.sched import (
    SW_VOL,
    SWT_RELINQUISH,
    SWT_SLEEPQ,
    SWT_SLEEPQTIMO,
    Callout,
    callout_reset,
    callout_stop,
    sched_switch,
    set_td_flags,
    setrunnable,
)

# sys/sys/param.h: flags or-ed into a sleep's priority
PRIMASK = 0x0FF
PCATCH = 0x100  # the sleep may be interrupted by a signal
PDROP = 0x200

EWOULDBLOCK = EAGAIN  # a timed sleep timed out

SLEEPQ_INTERRUPTIBLE = 0x100


def _queues() -> dict:
    kernel = pcpu.kernel
    if kernel.sleepq is None:
        kernel.sleepq = {}
    return kernel.sleepq


@kfunc
def mi_switch(flags: int) -> None:
    """Switch to another thread: the machine-independent half of a context switch."""
    td = pcpu.curthread
    td.td_proc.p_ru["ru_nvcsw" if flags & SW_VOL else "ru_nivcsw"] += 1
    sched_switch(td, flags)


def msleep(ident: object, priority: int, wmesg: str, timo_ns: int = 0) -> int:
    """msleep(9)/tsleep(9) are macros for _sleep(); the lock argument has no counterpart here (one CPU)."""
    return _sleep(ident, priority, wmesg, timo_ns)


tsleep = msleep


@kfunc
def _sleep(ident: object, priority: int, wmesg: str, timo_ns: int) -> int:
    catch = priority & PCATCH
    pri = priority & PRIMASK
    sleepq_add(ident, wmesg, SLEEPQ_INTERRUPTIBLE if catch else 0)
    if timo_ns:
        sleepq_set_timeout(ident, timo_ns)
    if timo_ns and catch:
        return sleepq_timedwait_sig(ident, pri)
    if timo_ns:
        return sleepq_timedwait(ident, pri)
    if catch:
        return sleepq_wait_sig(ident, pri)
    sleepq_wait(ident, pri)
    return 0


def pause(wmesg: str, timo_ns: int) -> int:
    """pause(9): sleep for a while on nothing anyone will wake."""
    return _sleep(object(), 0, wmesg, timo_ns)


@kfunc
def wakeup(ident: object) -> None:
    """Make every thread asleep on `ident` runnable (sleepq_broadcast)."""
    queue = _queues().pop(ident, None)
    if queue:
        for td in queue:
            _resume(td)


@kfunc
def wakeup_one(ident: object) -> None:
    queue = _queues().get(ident)
    if queue:
        td = queue.pop(0)
        if not queue:
            del _queues()[ident]
        _resume(td)


# -- sleep queues (subr_sleepqueue.c) ---------------------------------------------------------------------------


@kfunc
def sleepq_add(wchan: object, wmesg: str, flags: int) -> None:
    td, machine = pcpu.curthread, pcpu.machine
    machine.charge(machine.profile.sleepq_ns)
    _queues().setdefault(wchan, []).append(td)
    td.td_wchan, td.td_wmesg = wchan, wmesg
    if flags & SLEEPQ_INTERRUPTIBLE:
        set_td_flags(td, (td.td_flags | TDF_SINTR) & ~TDF_SLEEPABORT)
    machine.emit("proc", "sleep", Sleep(td.td_tid, wmesg))


def sleepq_set_timeout(wchan: object, timo_ns: int) -> None:
    td = pcpu.curthread
    if td.td_sleeptimo is None:
        td.td_sleeptimo = Callout()
    callout_reset(td.td_sleeptimo, pcpu.machine.now + timo_ns, sleepq_timeout, td)


@kfunc
def sleepq_switch(wchan: object, pri: int) -> None:
    td = pcpu.curthread
    if td.td_wchan is None:
        return  # already woken between sleepq_add and here
    if td.td_flags & TDF_TIMEOUT:
        _remove(td)
        return
    sched_sleep(td, pri)
    td.td_state = TDS_INHIBITED  # TD_SET_SLEEPING
    sdt_fire("sched", ("sleep",))
    mi_switch(SW_VOL | (SWT_SLEEPQTIMO if td.td_sleeptimo and td.td_sleeptimo.pending else SWT_SLEEPQ))


def sched_sleep(td: Thread, pri: int) -> None:
    """Lend the sleeper its sleep priority: when woken it is better than threads running user code (a
    simplification of ULE's static_boost and 4BSD's sleep priorities)."""
    if pri and pri < td.td_priority:
        td.td_priority = pri


@kfunc
def sleepq_wait(wchan: object, pri: int) -> None:
    sleepq_switch(wchan, pri)


@kfunc
def sleepq_wait_sig(wchan: object, pri: int) -> int:
    rcatch = sleepq_catch_signals(wchan, pri)
    rval = sleepq_check_signals()
    return rcatch or rval


@kfunc
def sleepq_timedwait(wchan: object, pri: int) -> int:
    sleepq_switch(wchan, pri)
    return sleepq_check_timeout()


@kfunc
def sleepq_timedwait_sig(wchan: object, pri: int) -> int:
    rcatch = sleepq_catch_signals(wchan, pri)
    rvalt = sleepq_check_timeout()
    rvals = sleepq_check_signals()
    return rcatch or rvals or rvalt


@kfunc
def sleepq_catch_signals(wchan: object, pri: int) -> int:
    """Before sleeping, look for a signal already pending: if one will be caught, do not sleep at all."""
    from sim.kern.kern_sig import cursig, sigintr

    td = pcpu.curthread
    sig = cursig(td)
    if sig == 0:
        sleepq_switch(wchan, pri)
        return 0
    ret = sigintr(td, sig)
    if td.td_wchan is not None:
        _remove(td)
    return ret


@kfunc
def sleepq_check_signals() -> int:
    """After the sleep: did sleepq_abort() (a signal) end it, and with which errno?"""
    td = pcpu.curthread
    if td.td_flags & TDF_SINTR:
        set_td_flags(td, td.td_flags & ~TDF_SINTR)
    if td.td_flags & TDF_SLEEPABORT:
        set_td_flags(td, td.td_flags & ~TDF_SLEEPABORT)
        return td.td_intrval
    return 0


def sleepq_check_timeout() -> int:
    td = pcpu.curthread
    if td.td_flags & TDF_TIMEOUT:
        set_td_flags(td, td.td_flags & ~TDF_TIMEOUT)
        return EWOULDBLOCK
    if td.td_sleeptimo is not None and td.td_sleeptimo.pending:
        callout_stop(td.td_sleeptimo)
    return 0


@kfunc
def sleepq_timeout(td: Thread) -> None:
    """The sleep's callout fired: end the sleep with EWOULDBLOCK."""
    if td.td_wchan is not None:
        td.td_flags |= TDF_TIMEOUT
        _resume(td)


@kfunc
def sleepq_abort(td: Thread, intrval: int) -> None:
    """A signal interrupts an interruptible sleep (tdsigwakeup): the sleep will return `intrval`."""
    td.td_intrval = intrval
    td.td_flags |= TDF_SLEEPABORT
    if td.td_wchan is not None:
        _resume(td)


def _remove(td: Thread) -> None:
    queues = _queues()
    queue = queues.get(td.td_wchan)
    if queue and td in queue:
        queue.remove(td)
        if not queue:
            del queues[td.td_wchan]
    td.td_wchan, td.td_wmesg = None, ""
    td.td_flags &= ~TDF_SINTR


def _resume(td: Thread) -> None:
    """sleepq_resume_thread: off the sleep queue, and onto the run queue if it had gone to sleep."""
    machine = pcpu.machine
    machine.charge(machine.profile.sleepq_ns)
    if td.td_wchan is not None and td.td_wchan in _queues():
        _remove(td)
    else:
        td.td_wchan, td.td_wmesg = None, ""
        td.td_flags &= ~TDF_SINTR
    if td.td_state == TDS_INHIBITED:
        sdt_fire("sched", ("wakeup",))  # sleepq_resume_thread: SDT_PROBE2(sched, , , wakeup, td, td->td_proc)
        machine.emit("proc", "wakeup", Wakeup(td.td_tid, td.td_proc.p_comm))
        setrunnable(td)


# -- yielding ------------------------------------------------------------------------------------------------


@syscall_handler
@kfunc
def sys_sched_yield(td: Thread) -> int:
    """sched_relinquish: go to the back of the run queue, at user priority."""
    td.td_priority = td.td_user_pri
    mi_switch(SW_VOL | SWT_RELINQUISH)
    return 0
