"""The scheduler of one CPU (sys/kern/sched_ule.c, kern_switch.c, kern_idle.c), the context switch
(sys/amd64/amd64/cpu_switch.S) and callouts (sys/kern/kern_timeout.c).

Each simulated thread's stacks, kernel and user, are one greenlet: a thread leaves the CPU only where FreeBSD's
would block or yield (a sleep, ast()'s reschedule, sched_yield, exit), and cpu_switch() is the one place a
greenlet switch happens. So a run stays deterministic: the run queue is ordered by priority, then by arrival.

When nothing is runnable the idle thread runs: it halts the CPU until the next callout is due (a sleep's
timeout, a disk completion, the syncer's next second) and runs it, as hardclock and softclock would. Callouts
run only when the CPU would otherwise idle (a simplification: a busy CPU is not interrupted by the clock).
The run is over when no user thread is left and no callout is pending; if user threads remain but all sleep
with nothing that could wake them, the run is deadlocked.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from contextvars import copy_context
from dataclasses import dataclass, field

from greenlet import greenlet

from sim.core.events import ContextSwitch, CpuIdle, StillRunning
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.ksyms import kernel_stack_top
from sim.kern.proc import (
    P_KPROC,
    P_SYSTEM,
    TDF_IDLETD,
    TDF_NEEDRESCHED,
    TDP_KTHREAD,
    TDS_CAN_RUN,
    TDS_INACTIVE,
    TDS_RUNNING,
    TDS_RUNQ,
    Proc,
    Thread,
    Ucred,
)
from sim.machine.cpu import KERNEL_CPL, REGISTERS

# sys/priority.h (FreeBSD 11): lower is better. A thread asleep in the kernel is lent a kernel priority, so
# when it is woken it is better than any thread running at user priority.
PRI_MIN_KERN = 80
PSWP = PRI_MIN_KERN + 0
PVM = PRI_MIN_KERN + 4
PRIBIO = PRI_MIN_KERN + 12
PZERO = PRI_MIN_KERN + 20
PSOCK = PRI_MIN_KERN + 24
PWAIT = PRI_MIN_KERN + 28
PPAUSE = PRI_MIN_KERN + 36
PRI_MIN_TIMESHARE = 120
PUSER = PRI_MIN_TIMESHARE
PRI_MIN_IDLE = 224
PRI_MAX_IDLE = 255

# mi_switch() flags (sys/sys/proc.h)
SW_VOL = 0x0100  # voluntary switch
SW_INVOL = 0x0200  # involuntary switch
SWT_SLEEPQ = 4
SWT_SLEEPQTIMO = 5
SWT_RELINQUISH = 6
SWT_NEEDRESCHED = 7
SWT_IDLE = 8

FIRST_KPROC_PID = 11  # FreeBSD's idle process is pid 11; the other kernel processes follow it here


class Deadlock(Exception):
    """Every user thread sleeps and nothing (no callout) can ever wake one: the run cannot go on."""


@dataclass(eq=False)
class Callout:
    """struct callout: call c_func(c_arg) at c_time (simulated ns)."""

    c_func: Callable | None = None
    c_arg: object = None
    c_time: int = 0
    pending: bool = False


@dataclass
class Scheduler:
    """The per-run scheduler state: FreeBSD keeps these in the tdq and the callout wheel."""

    runq: list = field(default_factory=list)  # heap of (priority, arrival, thread)
    callouts: list = field(default_factory=list)  # heap of (time, arrival, callout)
    arrivals: itertools.count = field(default_factory=itertools.count)
    main: greenlet | None = None  # the greenlet that drives the run (sim/run.py's record)
    idlethread: Thread | None = None
    finished: bool = False
    next_kproc_pid: int = FIRST_KPROC_PID
    switches: int = 0


def sched(kernel=None) -> Scheduler:
    kernel = kernel or pcpu.kernel
    if kernel.sched is None:
        kernel.sched = Scheduler()
    return kernel.sched


# -- the run queue ---------------------------------------------------------------------------------------


def sched_add(td: Thread) -> None:
    """Put a runnable thread on the run queue; if it is better than the running thread, ask that one to yield."""
    s = sched()
    td.td_state = TDS_RUNQ
    heapq.heappush(s.runq, (td.td_priority, next(s.arrivals), td))
    if not td.td_flags & TDF_IDLETD:
        sdt_fire("sched", ("enqueue",))  # tdq_runq_add: SDT_PROBE4(sched, , , enqueue, td, td->td_proc, NULL, 0)
    ctd = pcpu.curthread
    # sched_setpreempt: the running thread yields at its next return to user mode (ast -> mi_switch).
    if td.td_priority < ctd.td_priority and not ctd.td_flags & TDF_NEEDRESCHED:
        set_td_flags(ctd, ctd.td_flags | TDF_NEEDRESCHED)


def setrunnable(td: Thread) -> None:
    """A thread that was asleep can run again."""
    td.td_state = TDS_CAN_RUN
    sched_add(td)


def choosethread() -> Thread:
    s = sched()
    while s.runq:
        _, _, td = heapq.heappop(s.runq)
        if td.td_state == TDS_RUNQ:
            if not td.td_flags & TDF_IDLETD:
                sdt_fire("sched", ("dequeue",))  # tdq_runq_rem
            return td
    return s.idlethread


def set_td_flags(td: Thread, flags: int) -> None:
    old = td.td_flags
    td.td_flags = flags
    if td is pcpu.curthread:
        pcpu.machine.log.delta(("td", "td_flags", old, flags))


# -- switching ---------------------------------------------------------------------------------------------


@kfunc
def sched_switch(td: Thread, flags: int) -> None:
    """Give up the CPU: a thread that is still runnable goes to the back of its queue."""
    if td.td_state == TDS_RUNNING:
        sched_add(td)
    newtd = choosethread()
    if newtd is td:
        td.td_state = TDS_RUNNING
        sdt_fire("sched", ("remain-cpu",))
        pcpu.machine.emit("proc", "sched_switch", StillRunning(td.td_tid))
        return
    cpu_switch(td, newtd)


@kfunc
def sched_throw(td: Thread) -> None:
    """The exiting thread leaves the CPU for good (thread_exit): switch to the next without saving anything.
    Never returns: the exiting thread's stacks are unwound, and the next thread runs."""
    from sim.kern.kern_exit import ThreadExited

    td.td_state = TDS_INACTIVE
    newtd = choosethread()
    _load_thread(td, newtd, "cpu_throw", save=False)
    raise ThreadExited()


@kfunc
def cpu_switch(old: Thread, new: Thread) -> None:
    """Save the running thread's context in its pcb, load the next thread's, and run it.

    The user registers are already safe in each thread's trapframe; what moves here is the kernel context,
    and, when the next thread belongs to another process, %cr3: the other address space.
    """
    sdt_fire("sched", ("off-cpu",))  # sched_switch: SDT_PROBE2(sched, , , off__cpu, newtd, newtd->td_proc)
    _load_thread(old, new, "cpu_switch", save=True)
    new.td_greenlet.switch()
    # Back on the CPU: whoever switched to this thread has already restored its registers.


def _load_thread(old: Thread, new: Thread, how: str, save: bool) -> None:
    machine, s = pcpu.machine, sched()
    cpu, log = machine.cpu, machine.log
    s.switches += 1
    _charge_rusage(old)  # mi_switch: the old thread's run ends here; the switch itself is the new one's
    new.td_rux_base = (machine.user_ns, machine.sys_ns)
    machine.charge(machine.profile.cpu_switch_ns)
    if save:
        old.td_md_regs = dict(cpu.regs)
        old.td_kdepth = log.depth
    pmap = thread_pmap(new)
    if pmap is not None:
        from sim.vm.pmap import pmap_activate

        pmap_activate(pmap)  # another process: load its page-table root into %cr3
    for name in REGISTERS:
        if name not in ("cpl", "cr3", "cr2", "cr4") and name in new.td_md_regs:
            cpu.set(name, new.td_md_regs[name])
    cpu.set("cpl", KERNEL_CPL)
    pcpu.curthread = new
    new.td_state = TDS_RUNNING
    log.delta(("thread", old.td_tid, new.td_tid))
    machine.emit("proc", how, ContextSwitch(old.td_tid, old.td_proc.p_comm, new.td_tid, new.td_proc.p_comm))
    log.depth = new.td_kdepth
    sdt_fire("sched", ("on-cpu",))  # in the thread now running, as its sched_switch returns


def _charge_rusage(td: Thread) -> None:
    """Bill the time since the thread went on the CPU to its process (the kernel's rux accounting)."""
    machine = pcpu.machine
    user, system = machine.user_ns, machine.sys_ns
    base_user, base_system = td.td_rux_base
    rux = td.td_proc.p_rux
    rux[0] += user - base_user
    rux[1] += system - base_system
    td.td_rux_base = (user, system)


def charge_rusage(td: Thread) -> None:
    _charge_rusage(td)


def thread_pmap(td: Thread):
    """The page tables a thread runs on: its process's pmap, or the kernel pmap for kernel threads (None
    before the VM model has made any)."""
    vm = getattr(pcpu.kernel, "vm", None)
    vmspace = getattr(td.td_proc, "p_vmspace", None)
    if vmspace is not None:
        return vmspace.vm_pmap
    return vm.kernel_pmap if vm is not None and td.td_proc.p_flag & P_KPROC else None


# -- threads as greenlets -------------------------------------------------------------------------------------


def thread_start(td: Thread, body: Callable[[], None]) -> None:
    """Give a new thread the stacks it will run on when cpu_switch() first picks it."""
    from sim.kern.kern_exit import ThreadExited

    def run() -> None:
        try:
            body()
        except ThreadExited:
            pass

    td.td_greenlet = greenlet(run, parent=sched().main)
    td.td_greenlet.gr_context = copy_context()  # the run's context: pcpu's fast read of the machine (curmachine)


def kproc_create(name: str, body: Callable[[], None], priority: int) -> Thread:
    """A kernel process with one kernel thread (kproc_create(9)), e.g. the syncer or an AIO daemon."""
    kernel, s = pcpu.kernel, sched()
    p = Proc(p_pid=s.next_kproc_pid, p_comm=name, p_ucred=Ucred(), p_flag=P_KPROC | P_SYSTEM)  # proc0's: root
    s.next_kproc_pid += 1
    td = kernel.new_thread(p)
    td.td_pflags |= TDP_KTHREAD
    td.td_priority = td.td_user_pri = priority
    # cpu_fork's pcb for the new thread: it starts at fork_trampoline on its own kernel stack (never a user one)
    td.td_md_regs = dict(
        pcpu.machine.cpu.regs, cpl=KERNEL_CPL, rip=_ksym("fork_trampoline"), rsp=kernel_stack_top(td.td_tid)
    )
    kernel.procs.append(p)
    thread_start(td, body)
    if priority != PRI_MAX_IDLE:
        sched_add(td)  # it runs as soon as it is the best thread (the idle thread only when nothing else is)
    return td


def _ksym(name: str) -> int:
    from sim.kern.ksyms import kernel_symbol

    return kernel_symbol(name)


def sched_run(td: Thread, user_entry: Callable[[], None]) -> None:
    """Run the machine from its first user thread until no user thread is left (called by sim/run.py)."""
    s = sched()
    s.main = greenlet.getcurrent()
    s.idlethread = kproc_create("idle", sched_idletd, PRI_MAX_IDLE)
    s.idlethread.td_flags |= TDF_IDLETD
    td.td_state = TDS_RUNNING
    td.td_md_regs = dict(pcpu.machine.cpu.regs)
    thread_start(td, user_entry)
    try:
        while not s.finished:
            pcpu.curthread.td_greenlet.switch()
    finally:
        _reap_greenlets()


def _reap_greenlets() -> None:
    """Unwind the stacks of threads still asleep when the run ends, and let go of every thread's greenlet (reaped
    processes' too): a greenlet keeps the run's context, and with it the machine (pcpu's curmachine)."""
    kernel = pcpu.kernel
    for p in kernel.procs + kernel.reaped:
        for td in p.p_threads:
            g = td.td_greenlet
            if g is not None and g and not g.dead:
                g.throw()
            td.td_greenlet = None


def live_user_threads() -> list[Thread]:
    return [
        td for p in pcpu.kernel.procs if not p.p_flag & P_KPROC for td in p.p_threads if td.td_state != TDS_INACTIVE
    ]


def sched_idletd() -> None:
    """The idle thread: run whatever becomes runnable; otherwise halt until the next callout is due."""
    from sim.kern.kern_synch import mi_switch
    from sim.vm.vm_zeroidle import vm_page_zero_idle, wants_idle_zeroing

    machine, s = pcpu.machine, sched()
    idle = s.idlethread
    while True:
        if s.runq:
            mi_switch(SW_VOL | SWT_IDLE)
            continue
        if not s.callouts:
            sleeping = live_user_threads()
            if sleeping:
                raise Deadlock(
                    "every thread is asleep and nothing can wake one: "
                    + ", ".join(f"pid {td.td_proc.p_pid} in '{td.td_wmesg}'" for td in sleeping)
                )
            s.finished = True
            _charge_rusage(idle)
            return
        when = s.callouts[0][0]
        if when > machine.now and wants_idle_zeroing():
            vm_page_zero_idle(when)  # the pagezero process's share of the idle time (sim/vm/vm_zeroidle.py)
        if when > machine.now:
            machine.idle(when - machine.now)
            machine.emit("proc", "cpu_idle", CpuIdle(when))
        softclock()


# -- callouts (sys/kern/kern_timeout.c) -----------------------------------------------------------------------


def callout_reset(c: Callout, when: int, func: Callable, arg: object) -> None:
    """Arrange for func(arg) to run at simulated time `when`."""
    s = sched()
    c.c_func, c.c_arg, c.c_time, c.pending = func, arg, when, True
    heapq.heappush(s.callouts, (when, next(s.arrivals), c))


def callout_stop(c: Callout) -> None:
    c.pending = False
    s = sched()
    s.callouts = [entry for entry in s.callouts if entry[2] is not c]
    heapq.heapify(s.callouts)


@kfunc
def softclock() -> None:
    """Run every callout that is due."""
    s, now = sched(), pcpu.machine.now
    while s.callouts and s.callouts[0][0] <= now:
        _, _, c = heapq.heappop(s.callouts)
        if c.pending:
            c.pending = False
            c.c_func(c.c_arg)
