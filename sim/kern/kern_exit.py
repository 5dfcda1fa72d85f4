"""Process exit and wait (sys/kern/kern_exit.c, FreeBSD 11): _exit() never returns; wait4() reaps a zombie.

exit1() releases what the process holds (descriptors, address space), records its exit status, becomes a
zombie, tells its parent (SIGCHLD and a wakeup of the parent sleeping in wait4) and leaves the CPU for good.
The zombie keeps its status and resource usage until the parent collects them with wait4().
"""

from __future__ import annotations

import struct

from sim.core.events import ProcessExit, Reap, ThreadEnded
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.errno import ECHILD, EFAULT, EINVAL
from sim.kern.kernel import syscall_handler
from sim.kern.proc import (
    P_HADTHREADS,
    P_PPWAIT,
    P_TRACED,
    P_WEXIT,
    PRS_ZOMBIE,
    TDS_INACTIVE,
    TDS_INHIBITED,
    Proc,
    Thread,
)


class ThreadExited(BaseException):
    """The thread left the CPU for good: unwinds the simulated thread's Python stack.

    A BaseException, so that a program's `except Exception` cannot catch its own exit.
    """


# sys/sys/wait.h
WNOHANG = 1
WUNTRACED = 2
WCONTINUED = 4
WNOWAIT = 8
WEXITED = 16
WTRAPPED = 32
WAIT_ANY = -1

RUSAGE = struct.Struct("<qqqq14q")  # struct rusage: ru_utime, ru_stime (timevals), then 14 longs


def W_EXITCODE(ret: int, sig: int) -> int:  # noqa: N802 - sys/sys/wait.h
    return (ret << 8) | sig


@syscall_handler
@kfunc
def sys_exit(td: Thread, rval: int) -> int:
    exit1(td, rval & 0xFF, 0)
    raise AssertionError("exit1 returned")


@kfunc
def exit1(td: Thread, rval: int, signo: int) -> None:
    from sim.kern.kern_descrip import fdescfree
    from sim.kern.kern_fork import release_ppwait
    from sim.kern.kern_sig import SIGCHLD, pksignal
    from sim.kern.kern_synch import wakeup
    from sim.kern.sched import charge_rusage

    machine = pcpu.machine
    machine.charge(machine.profile.exit_ns)
    p = td.td_proc
    if p.p_flag & P_HADTHREADS:
        thread_single_exit(td)  # the other threads must go first
    p.p_xexit, p.p_xsig = rval, signo
    p.p_flag |= P_WEXIT
    release_ppwait(p)  # a vfork parent waits for this exit
    p.p_flag &= ~(P_TRACED | P_PPWAIT)
    fdescfree(td)  # close every descriptor: pipe and socket peers see EOF now
    vmspace_exit(td)
    p.p_exitstatus = W_EXITCODE(rval, signo)
    p.p_siglist = td.td_siglist = 0
    sdt_fire("proc", ("exit",))  # SDT_PROBE1(proc, , , exit, reason)
    machine.emit("proc", "exit", ProcessExit(p.p_pid, p.p_comm, rval, signo))
    parent = p.p_pptr
    if parent is not None:
        pksignal(parent, SIGCHLD, 0)  # childproc_exited
        wakeup(parent)  # the parent may be asleep in wait4
    p.p_state = PRS_ZOMBIE
    charge_rusage(td)
    p.p_exittime = machine.now  # the end of the process's time, as time(1) sees it
    thread_exit(td)


def vmspace_exit(td: Thread) -> None:
    """Drop the process's reference to its address space (the VM model frees it with the last one)."""
    vm = getattr(td.td_proc, "p_vmspace", None)
    if vm is not None:
        from sim.vm.vm_map import vmspace_exit as vm_vmspace_exit

        vm_vmspace_exit(td)


@kfunc
def thread_exit(td: Thread) -> None:
    """The thread's last moment on the CPU: switch away and never come back."""
    from sim.kern.sched import sched_throw

    td.td_state = TDS_INACTIVE
    sched_throw(td)


def thread_single_exit(td: Thread) -> None:
    """thread_single(p, SINGLE_EXIT): every other thread of the process stops for good."""
    from sim.kern.kern_synch import _remove

    for other in td.td_proc.p_threads:
        if other is not td and other.td_state != TDS_INACTIVE:
            if other.td_state == TDS_INHIBITED and other.td_wchan is not None:
                _remove(other)
            other.td_state = TDS_INACTIVE
            pcpu.machine.emit("proc", "thread_exit", ThreadEnded(other.td_tid))


@syscall_handler
@kfunc
def sys_wait4(td: Thread, pid: int, status: int, options: int, rusage: int) -> int:
    from sim.kern.support import copyout

    error, xstatus, child = kern_wait(td, _signed32(pid), options)
    if status and error == 0 and td.td_retval[0] != 0 and copyout(struct.pack("<i", xstatus), status, 4):
        return EFAULT
    if rusage and error == 0 and td.td_retval[0] != 0:
        user, system = child
        ru = RUSAGE.pack(user // 10**9, user % 10**9 // 1000, system // 10**9, system % 10**9 // 1000, *[0] * 14)
        if copyout(ru, rusage, RUSAGE.size):
            return EFAULT
    return error


def kern_wait(td: Thread, pid: int, options: int) -> tuple[int, int, tuple[int, int]]:
    """kern_wait6 for wait4: reap a zombie child, or sleep until one exits."""
    from sim.kern.kern_synch import PCATCH, msleep
    from sim.kern.sched import PWAIT

    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | WNOWAIT):
        return EINVAL, 0, (0, 0)
    q = td.td_proc
    while True:
        matching = [p for p in q.p_children if pid in (WAIT_ANY, 0, p.p_pid) or (pid < -1)]
        if not matching:
            return ECHILD, 0, (0, 0)
        for p in matching:
            if p.p_state == PRS_ZOMBIE:
                td.set_retval(0, p.p_pid)
                return 0, W_EXITCODE(p.p_xexit, p.p_xsig), proc_reap(td, p, options)
        if options & WNOHANG:
            td.set_retval(0, 0)
            return 0, 0, (0, 0)
        error = msleep(q, PWAIT | PCATCH, "wait")
        if error:
            return error, 0, (0, 0)


@kfunc
def proc_reap(td: Thread, p: Proc, options: int) -> tuple[int, int]:
    """Collect the zombie: its usage (with its own reaped children's) goes into the parent's children's."""
    usage = (p.p_rux[0] + p.p_crux[0], p.p_rux[1] + p.p_crux[1])
    if options & WNOWAIT:
        return usage
    q = td.td_proc
    q.p_crux[0] += usage[0]
    q.p_crux[1] += usage[1]
    q.p_cru.update(p.p_ru)  # ruadd(&q->p_stats->p_cru, ...): its counters and its own children's
    q.p_cru.update(p.p_cru)
    q.p_children.remove(p)
    pcpu.kernel.procs.remove(p)
    pcpu.kernel.reaped.append(p)
    pcpu.machine.emit("proc", "reap", Reap(q.p_pid, p.p_pid, p.p_exitstatus))
    return usage


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value
