"""The C library's process, signal and thread wrappers (lib/libc, lib/libthr, FreeBSD 11), behind Libc.

These build the structures the kernel reads (a struct sigaction, struct thr_param) in user memory, on the
stack below %rsp as C locals would be, and read back what the kernel writes (a wait status, two descriptors).

Two things Python cannot do as C does are stood in for here, and only here:
  - fork() cannot copy the Python stack, so the caller of fork(child) says what the child runs after the
    kernel has returned 0 to it;
  - code addresses (a signal handler, a thread's start routine) name Python functions through uexec's text.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sim.core.events import Rdtscp, StackLocals, ThreadStart, VdsoClockGettime
from sim.core.pcpu import pcpu
from sim.kern.kern_sig import SA_RESTART, SIG_DFL, SIG_IGN, SIGACTION
from sim.kern.kern_thr import THR_PARAM, UMTX_OP_WAIT
from sim.kern.kern_time import TIMESPEC, VDSO_CLOCKS
from sim.kern.ksyms import libc_symbol
from sim.user import umem
from sim.user.uexec import resume_user, text_address

if TYPE_CHECKING:
    from sim.user.libc import Libc

__all__ = ["SA_RESTART", "SIG_DFL", "SIG_IGN"]

SYSCALL_AT = 8  # the syscall instruction's offset in a stub (libc.py)
THR_STACK_DEFAULT = 2 * 1024 * 1024  # libthr's default stack for a 64-bit process
PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_PRIVATE, MAP_STACK, MAP_ANON = 0x0002, 0x0400, 0x1000
TID_TERMINATED = 1  # what thr_exit stores in the thread's id word

# libthr's per-process state, kept with the process (weakly, so it goes with the run): the start routine of
# each thread (struct pthread's start_routine) and the count of live threads.
_threads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_active: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def stack_locals(libc: Libc, size: int) -> Iterator[int]:
    """`sub $size,%rsp` for the call's locals, and `add` back afterwards."""
    cpu = pcpu.machine.cpu
    rsp = cpu["rsp"]
    base = (rsp - size) & ~0xF
    cpu.set("rsp", base)
    libc._step(f"sub ${rsp - base:#x},%rsp", StackLocals(size, base, rsp - base))
    yield base
    # Only a normal return runs the `add`: not a thread that exited or a machine that panicked meanwhile.
    cpu.set("rsp", rsp)


def fork(libc: Libc, name: str, child: Callable | None) -> int:
    td = pcpu.curthread
    syscall_at = libc_symbol(name) + SYSCALL_AT
    td.td_ucontinuation = lambda: _fork_child(libc, syscall_at, child)
    try:
        return libc.syscall(name)
    finally:
        td.td_ucontinuation = None


def _fork_child(parent_libc: Libc, syscall_at: int, child: Callable | None) -> None:
    """The child, in user mode just after the `syscall` of the fork stub, with %rax = 0."""
    from sim.user.libc import Libc

    libc = Libc()
    libc.return_address = parent_libc.return_address
    resume_user(syscall_at)  # a signal may be delivered on the child's way out of the kernel
    pid = libc._stub_return()
    assert pid == 0, "the child's fork() returns 0"
    _active[pcpu.curthread.td_proc] = 1  # the child of fork has only the thread that forked
    status = _call(child, libc) if child is not None else 0
    libc._exit(status if isinstance(status, int) else 0)


def _call(fn: Callable, libc: Libc, *args: int):
    """Call a program's function with as many of (libc, args...) as it takes."""
    import inspect

    return fn(*(libc, *args)[: len(inspect.signature(fn).parameters)])


def waitpid(libc: Libc, pid: int, options: int) -> tuple[int, int]:
    with stack_locals(libc, 4) as status:
        got = libc.syscall("wait4", pid, status, options, 0)
        return got, (int.from_bytes(umem.load(status, 4), "little") if got > 0 else 0)


def sigaction(libc: Libc, sig: int, handler, flags: int, mask: int) -> int:
    address = handler if isinstance(handler, int) else text_address(handler)
    with stack_locals(libc, SIGACTION.size) as act:
        umem.store(act, SIGACTION.pack(address, flags, mask, 0, 0, 0))
        return libc.syscall("sigaction", sig, act, 0)


def fd_pair(libc: Libc, name: str, *args: int) -> tuple[int, int]:
    with stack_locals(libc, 8) as fds:
        call_args = (fds, *args) if name == "pipe2" else (*args, fds)
        if libc.syscall(name, *call_args) == -1:
            return -1, -1
        return struct.unpack("<ii", umem.load(fds, 8))


def pthread_create(libc: Libc, start: Callable, arg: int) -> int:
    """libthr: a stack (mmap), the thread's id word at its top, then thr_new(2) at thread_start."""
    size = THR_STACK_DEFAULT
    stack = libc.syscall("mmap", 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_STACK | MAP_ANON, -1, 0)
    if stack == -1:
        return -1
    stack &= (1 << 64) - 1
    pthread = stack + size - 64  # struct pthread's tid field (the rest of libthr's struct is not modelled)
    p = pcpu.curthread.td_proc
    _threads.setdefault(p, {})[pthread] = (start, arg)
    with stack_locals(libc, THR_PARAM.size) as param:
        umem.store(param, THR_PARAM.pack(text_address(thread_start), pthread, stack, size - 64, 0, 0, pthread,
                                         pthread, 0, 0))  # fmt: skip
        if libc.syscall("thr_new", param, THR_PARAM.size) == -1:
            return -1
    _active[p] = _active.get(p, 1) + 1
    return pthread


def thread_start() -> None:
    """libthr's thread_start(struct pthread *): the new thread's first user-mode code."""
    from sim.user.libc import Libc

    pthread = pcpu.machine.cpu["rdi"]
    p = pcpu.curthread.td_proc
    start, arg = _threads[p][pthread]
    libc = Libc()
    libc._step("thread_start", ThreadStart(pthread))
    _call(start, libc, arg)
    pthread_exit(libc, pthread)


def pthread_exit(libc: Libc, pthread: int) -> None:
    """The last thread out exits the process; any other ends with thr_exit, which wakes its joiner."""
    p = pcpu.curthread.td_proc
    _active[p] = _active.get(p, 1) - 1
    if _active[p] == 0:
        libc._exit(0)
    libc.syscall("thr_exit", pthread)


def pthread_join(libc: Libc, pthread: int) -> int:
    """Sleep in _umtx_op until thr_exit has stored TID_TERMINATED in the thread's id word."""
    while True:
        tid = umem.load_word(pthread)
        if tid == TID_TERMINATED:
            return 0
        libc.syscall("_umtx_op", pthread, UMTX_OP_WAIT, tid, 0, 0)


def clock_gettime(libc: Libc, clock_id: int, tp: int) -> int:
    """__vdso_clock_gettime when the kernel has given the process a timekeeping page (AT_TIMEKEEP) that it says
    the vdso can read (tk_enabled: the timecounter is the TSC), else (ENOSYS) the system call."""
    from sim.kern.kern_time import VDSO_TIMEKEEP, timekeep_va

    timekeep = timekeep_va(pcpu.curthread.td_proc)
    if clock_id not in VDSO_CLOCKS or not timekeep:
        return libc.syscall("clock_gettime", clock_id, tp)
    libc.call("clock_gettime", clock_id, tp)
    libc._step("__vdso_clock_gettime", VdsoClockGettime(timekeep))
    fields = VDSO_TIMEKEEP.unpack(umem.load(timekeep, VDSO_TIMEKEEP.size))
    if not fields[1]:  # tk_enabled == 0: ENOSYS
        return libc._ret(libc.syscall("clock_gettime", clock_id, tp))  # __sys_clock_gettime
    ns = vdso_read(libc, timekeep, fields, clock_id)
    umem.store(tp, TIMESPEC.pack(*divmod(ns, 10**9)))
    return libc._ret(0)


TK_CURRENT_OFFSET, TH_GEN_END = 8, 20  # struct vdso_timekeep: tk_current at 8, then th_algo and th_gen to 20


def vdso_read(libc: Libc, timekeep: int, fields: tuple, clock_id: int) -> int:
    """binuptime() in user mode (lib/libc/sys/__vdso_gettimeofday.c, FreeBSD 11) over the timekeep's fields
    (tk_current, th_gen, ...): the timehands' offset plus the TSC ticks since (__vdso_gettc: `lfence; rdtsc`)
    times th_scale, then a check that tk_current and th_gen are unchanged (the generation loop: the kernel may
    update the timehands meanwhile; on one simulated CPU it never has, so the loop runs once)."""
    from sim.kern.kern_time import CLOCK_SECOND, REALTIME_CLOCKS

    _, enabled, _, _, _, scale, offset_count, mask, off_sec, off_frac, boot_sec, boot_frac = fields
    tsc = pcpu.machine.now  # the simulated TSC counts at 1 GHz from boot
    libc._step("lfence; rdtsc", Rdtscp(tsc))
    frac = off_frac + ((tsc - offset_count) & mask) * scale
    sec = off_sec + (frac >> 64)
    frac &= (1 << 64) - 1
    if clock_id in REALTIME_CLOCKS:
        frac += boot_frac
        sec += boot_sec + (frac >> 64)
        frac &= (1 << 64) - 1
    umem.load(timekeep + TK_CURRENT_OFFSET, TH_GEN_END - TK_CURRENT_OFFSET)  # } while (curr != tk_current || ...)
    if clock_id == CLOCK_SECOND:
        return sec * 10**9
    return sec * 10**9 + ((10**9 * (frac >> 32)) >> 32)  # bintime2timespec
