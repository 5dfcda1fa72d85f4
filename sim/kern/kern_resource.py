"""getrusage(2) (sys/kern/kern_resource.c) and cpuset_setaffinity(2) (sys/kern/kern_cpuset.c), FreeBSD 11.

getrusage fills struct rusage from the process's times (rufetch: each thread's time up to now) and the counters
its threads keep (ru_msgsnd and ru_msgrcv in sosend/soreceive, ru_nvcsw and ru_nivcsw in mi_switch), or its
reaped children's. The simulated machine has one CPU: an affinity mask must include CPU 0.
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.kern.errno import EDEADLK, EINVAL, ERANGE
from sim.kern.kern_exit import RUSAGE
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread

RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD = 0, -1, 1
# struct rusage's 14 longs after the two timevals, by name
RUSAGE_LONGS = ("ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock",
                "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw")  # fmt: skip
CPU_LEVEL_WHICH = 3
CPU_WHICH_PID = 2
CPU_MAXSIZE_BYTES = 32  # cpuset_t: CPU_MAXSIZE (256) bits


def _timeval(ns: int) -> tuple[int, int]:
    return ns // 10**9, ns % 10**9 // 1000


@syscall_handler
@kfunc
def sys_getrusage(td: Thread, who: int, rusage: int) -> int:
    from sim.kern.sched import charge_rusage
    from sim.kern.support import copyout

    who &= 0xFFFFFFFF  # an int in a 64-bit register
    who = who - (1 << 32) if who & 0x80000000 else who
    p = td.td_proc
    if who == RUSAGE_SELF:
        charge_rusage(td)  # rufetch: the running thread's time up to now
        (user, system), counters = p.p_rux, p.p_ru
    elif who == RUSAGE_CHILDREN:
        (user, system), counters = p.p_crux, p.p_cru
    else:
        return EINVAL
    ru = RUSAGE.pack(*_timeval(user), *_timeval(system), *(counters[name] for name in RUSAGE_LONGS))
    return copyout(ru, rusage, RUSAGE.size)


@syscall_handler
@kfunc
def sys_cpuset_setaffinity(td: Thread, level: int, which: int, id: int, cpusetsize: int, mask: int) -> int:
    from sim.kern.support import copyin

    if cpusetsize > CPU_MAXSIZE_BYTES:
        return ERANGE
    buf = bytearray(cpusetsize)
    error = copyin(mask, buf, cpusetsize)
    if error:
        return error
    if level != CPU_LEVEL_WHICH or which != CPU_WHICH_PID:
        return EINVAL  # only the calling process's own mask is modelled
    if id not in (td.td_proc.p_pid, (1 << 64) - 1, (1 << 32) - 1):
        return EINVAL
    if not buf or not buf[0] & 1:
        return EDEADLK  # a mask with no CPU this machine has (CPU 0 is its only one)
    return 0
