"""Threads (sys/kern/kern_thr.c, FreeBSD 11): thr_new for pthread_create, thr_exit, thr_self; and the two
_umtx_op operations (sys/kern/kern_umtx.c) that pthread_join needs.

thr_new() makes a thread in the calling process: a copy of the caller's context (cpu_copy_thread), then
cpu_set_upcall() points its trapframe at the start routine with its argument in %rdi and its own stack. Like
a fork child, it first runs fork_trampoline -> fork_exit -> fork_return and reaches user mode with iretq.
thr_exit() stores 1 at the thread's id word and wakes the joiner sleeping on it with _umtx_op.
"""

from __future__ import annotations

import struct

from sim.core.events import ThrExit, ThrNew
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EFAULT, EINVAL
from sim.kern.kernel import syscall_handler
from sim.kern.ksyms import kernel_stack_top, kernel_symbol
from sim.kern.proc import P_HADTHREADS, PCB_FULL_IRET, TDS_INACTIVE, Thread
from sim.machine.cpu import KERNEL_CPL

# struct thr_param (sys/sys/thr.h, amd64): start_func, arg, stack_base, stack_size, tls_base, tls_size,
# child_tid, parent_tid, flags, rtp, spare[3]
THR_PARAM = struct.Struct("<QQQQQQQQi4xQ24x")
UMTX_OP_WAIT = 2  # sleep while the long at obj equals val
UMTX_OP_WAKE = 3  # wake up to val sleepers on obj
UMTX_OP_WAIT_UINT = 11
UMTX_OP_WAIT_UINT_PRIVATE = 15
UMTX_OP_WAKE_PRIVATE = 16


@syscall_handler
@kfunc
def sys_thr_new(td: Thread, param: int, param_size: int) -> int:
    from sim.kern.support import copyin

    if param_size < 0 or param_size > THR_PARAM.size:
        return EINVAL
    raw = bytearray(THR_PARAM.size)
    if copyin(param, raw, param_size) != 0:
        return EFAULT
    start_func, arg, stack_base, stack_size, _, _, child_tid, parent_tid, _, _ = THR_PARAM.unpack(raw)
    return thread_create(td, start_func, arg, stack_base, stack_size, child_tid, parent_tid)


@kfunc
def thread_create(td: Thread, entry: int, arg: int, stack_base: int, stack_size: int, child_tid: int,
                  parent_tid: int) -> int:  # fmt: skip
    from sim.kern.kern_fork import _child_start
    from sim.kern.sched import sched_add, thread_start
    from sim.kern.support import copyout

    machine, p = pcpu.machine, td.td_proc
    machine.charge(machine.profile.fork_ns // 4)  # thread_alloc + cpu_copy_thread: a fraction of a fork
    newtd = pcpu.kernel.new_thread(p)
    for where in (child_tid, parent_tid):
        if where and copyout(struct.pack("<q", newtd.td_tid), where, 8) != 0:
            p.p_threads.remove(newtd)
            return EFAULT
    cpu_copy_thread(newtd, td)
    cpu_set_upcall(newtd, entry, arg, stack_base, stack_size)
    newtd.td_sigmask = td.td_sigmask
    newtd.td_priority = newtd.td_user_pri = td.td_user_pri
    p.p_flag |= P_HADTHREADS
    machine.emit("proc", "thr_new", ThrNew(p.p_pid, newtd.td_tid, entry))
    thread_start(newtd, lambda: _child_start(newtd))
    sched_add(newtd)
    return 0


def cpu_copy_thread(td: Thread, td0: Thread) -> None:
    """The new thread's kernel context starts at fork_trampoline, like a fork child's."""
    td.td_frame.regs.update(td0.td_frame.regs)
    td.td_pcb.pcb_flags = td0.td_pcb.pcb_flags | PCB_FULL_IRET
    td.td_md_regs = dict(pcpu.machine.cpu.regs, cpl=KERNEL_CPL, rip=kernel_symbol("fork_trampoline"),
                         rsp=kernel_stack_top(td.td_tid))  # fmt: skip


def cpu_set_upcall(td: Thread, entry: int, arg: int, stack_base: int, stack_size: int) -> None:
    """Point the trapframe at the start routine, with its argument and a 16-byte aligned stack."""
    regs = td.td_frame.regs
    regs["tf_rbp"] = 0
    regs["tf_rsp"] = ((stack_base + stack_size) & ~0x0F) - 8
    regs["tf_rip"] = entry
    regs["tf_rdi"] = arg
    td.td_ucontinuation = None  # user mode begins wherever tf_rip points


@syscall_handler
@kfunc
def sys_thr_self(td: Thread, id_ptr: int) -> int:
    from sim.kern.support import copyout

    return EFAULT if copyout(struct.pack("<q", td.td_tid), id_ptr, 8) else 0


@syscall_handler
@kfunc
def sys_thr_exit(td: Thread, state: int) -> int:
    from sim.kern.kern_exit import thread_exit
    from sim.kern.support import copyout

    if state:
        copyout(struct.pack("<q", 1), state, 8)  # the joiner may now free this thread's stack
        kern_umtx_wake(td, state, 1 << 31)
    p = td.td_proc
    if sum(1 for t in p.p_threads if t.td_state != TDS_INACTIVE) == 1:
        return 0  # the last thread returns, and libthr calls exit(0)
    pcpu.machine.emit("proc", "thr_exit", ThrExit(p.p_pid, td.td_tid))
    thread_exit(td)
    return 0


def _umtx_key(td: Thread, obj: int) -> tuple:
    return (td.td_proc, obj)  # a process-private key: this address in this address space


@syscall_handler
@kfunc
def sys__umtx_op(td: Thread, obj: int, op: int, val: int, uaddr1: int, uaddr2: int) -> int:
    from sim.kern.kern_synch import PCATCH, msleep
    from sim.kern.sched import PWAIT
    from sim.kern.support import copyin

    if op in (UMTX_OP_WAIT, UMTX_OP_WAIT_UINT, UMTX_OP_WAIT_UINT_PRIVATE):
        size = 8 if op == UMTX_OP_WAIT else 4
        raw = bytearray(size)
        if copyin(obj, raw, size) != 0:
            return EFAULT
        current = int.from_bytes(raw, "little")
        if current != val & ((1 << (8 * size)) - 1):
            return 0  # the value already changed: no need to sleep
        return msleep(_umtx_key(td, obj), PWAIT | PCATCH, "uwait")
    if op in (UMTX_OP_WAKE, UMTX_OP_WAKE_PRIVATE):
        kern_umtx_wake(td, obj, val)
        return 0
    return EINVAL


def kern_umtx_wake(td: Thread, obj: int, count: int) -> None:
    from sim.kern.kern_synch import wakeup, wakeup_one

    if count >= 1 << 31:
        wakeup(_umtx_key(td, obj))
    else:
        for _ in range(count):
            wakeup_one(_umtx_key(td, obj))
