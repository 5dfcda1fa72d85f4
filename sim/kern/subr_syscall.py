"""The machine-independent system-call path (sys/kern/subr_syscall.c, FreeBSD 11), inlined in amd64_syscall().

syscallenter() runs the hooks of the lecture's slide in this order; each is gated by the flag FreeBSD tests, so
that a hook nobody asked for costs one test (see kfunc.gate) and the log shows it skipped:

  thread_cow_update (10.x's cred_update_thread),
  sv_fetch_syscall_args, ktrsyscall, ptracestop, IN_CAPABILITY_MODE, syscall_thread_enter,
  systrace_probe_func, AUDIT_SYSCALL_ENTER, sa->callp->sy_call, AUDIT_SYSCALL_EXIT, systrace_probe_func,
  syscall_thread_exit, sv_set_syscall_retval
"""

from __future__ import annotations

from sim.core.events import CapabilityMode, CapabilityRefused, SyscallArgs, SystraceSkipped
from sim.core.kfunc import gate, kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import ECAPMODE
from sim.kern.proc import (
    CRED_FLAG_CAPMODE,
    P_TRACED,
    S_PT_SCE,
    S_PT_SCX,
    TDB_SCE,
    TDB_SCX,
    TDP_NERRNO,
    TDP_RFPPWAIT,
    Thread,
)
from sim.kern.subr_trap import userret
from sim.kern.sysent import SY_THR_STATIC, SYF_CAPENABLED
from sim.kern.vm_machdep import cpu_set_syscall_retval

# What the systrace gates' skip events say (no enabled probe for this call), and IN_CAPABILITY_MODE's; made once.
_NO_ENTRY_PROBE, _NO_RETURN_PROBE = SystraceSkipped("entry"), SystraceSkipped("return")
_CAPENABLED_IN_CAPABILITY_MODE, _NOT_IN_CAPABILITY_MODE = CapabilityMode(True), CapabilityMode(False)
_NO_ARGUMENTS = SyscallArgs((), ())

KTR_SYSCALL = 1  # sys/sys/ktrace.h: record system-call entry
KTR_SYSRET = 2  # record system-call return


def KTRPOINT(td: Thread, kind: int) -> bool:  # noqa: N802 - the kernel's macro
    return bool(td.td_proc.p_traceflag & (1 << kind))


@kfunc
def syscallenter(td: Thread) -> int:
    machine, kernel = pcpu.machine, pcpu.kernel
    p, sa = td.td_proc, td.td_sa

    if gate("thread_cow_update", None, td.td_cowgen != p.p_cowgen):
        thread_cow_update(td)
    traced = bool(p.p_flag & P_TRACED)
    if traced:
        td.td_dbgflags |= TDB_SCE

    error = kernel.sv_fetch_syscall_args(td, sa)
    if gate("ktrsyscall", None, KTRPOINT(td, KTR_SYSCALL)):
        ktrsyscall(sa.code, sa.narg, sa.args)
    td.td_syscalls += 1
    if error == 0:
        config = kernel.config
        if gate("ptracestop", None, traced and bool(p.p_stops & S_PT_SCE)):
            ptracestop(td, "SIGTRAP")
        callp = sa.callp
        name = callp.name if callp else f"nosys (code {sa.code})"
        capenabled = bool(callp and callp.sy_flags & SYF_CAPENABLED)
        machine.log.now += machine.profile.flag_test_ns
        capability_mode = IN_CAPABILITY_MODE(td)
        if capability_mode and not capenabled:
            machine.emit("hook", "IN_CAPABILITY_MODE", CapabilityRefused(name))
            error = ECAPMODE
        else:
            mode = _CAPENABLED_IN_CAPABILITY_MODE if capability_mode else _NOT_IN_CAPABILITY_MODE
            machine.emit("skip", "IN_CAPABILITY_MODE", mode)
            # A syscall compiled into the kernel (SY_THR_STATIC) needs no drain barrier: nothing can unload it.
            dynamic = (callp.sy_thrcnt if callp else SY_THR_STATIC) & SY_THR_STATIC == 0
            gate("syscall_thread_enter", None, dynamic)
            # FreeBSD 11: if (systrace_probe_func != NULL && sa->callp->sy_entry != 0)
            if gate("systrace_probe_func", _NO_ENTRY_PROBE, config.dtrace_syscall or name in kernel.sy_entry):
                systrace_probe_func(sa, "entry")
            if gate("AUDIT_SYSCALL_ENTER", None, config.audit):
                audit_syscall_enter(sa.code, td)
            handler = kernel.handler(callp)
            kernel.syscall_counts[name] += 1
            machine.emit("syscall", name, _dispatched(sa) if machine.log.recording else None)
            error = handler(td, *sa.args)
            if gate("AUDIT_SYSCALL_EXIT", None, config.audit):
                audit_syscall_exit(error, td)
            if not td.td_pflags & TDP_NERRNO:
                _set_td_errno(td, error)
            if gate("systrace_probe_func", _NO_RETURN_PROBE, config.dtrace_syscall or name in kernel.sy_return):
                systrace_probe_func(sa, "return")
            gate("syscall_thread_exit", None, dynamic)
    if traced:
        td.td_dbgflags &= ~TDB_SCE
    cpu_set_syscall_retval(td, error)
    return error


@kfunc
def syscallret(td: Thread, error: int) -> None:
    p, sa = td.td_proc, td.td_sa
    userret(td, td.td_frame)
    if gate("ktrsysret", None, KTRPOINT(td, KTR_SYSRET)):
        ktrsysret(sa.code, error, td.td_retval[0])
    td.td_pflags &= ~TDP_NERRNO
    traced = bool(p.p_flag & P_TRACED)
    if gate("ptracestop", None, traced and bool(p.p_stops & S_PT_SCX)):
        td.td_dbgflags |= TDB_SCX
        ptracestop(td, "SIGTRAP")
        td.td_dbgflags &= ~TDB_SCX
    if gate("vfork wait", None, bool(td.td_pflags & TDP_RFPPWAIT)):
        from sim.kern.kern_fork import fork_rfppwait

        fork_rfppwait(td)


def IN_CAPABILITY_MODE(td: Thread) -> bool:  # noqa: N802 - the kernel's macro
    # The thread's cached credential: cap_enter() takes effect at the next thread_cow_update.
    return bool(td.td_ucred.cr_flags & CRED_FLAG_CAPMODE)


def _dispatched(sa) -> SyscallArgs:
    """The "syscall" event's payload: the parameters' names and the arguments as fetched."""
    if not sa.args:
        return _NO_ARGUMENTS
    return SyscallArgs(sa.callp.param_names, sa.args)


def _set_td_errno(td: Thread, error: int) -> None:
    old = td.td_errno
    td.td_errno = error
    if old != error:
        pcpu.machine.log.delta(("td", "td_errno", old, error))


@kfunc
def thread_cow_update(td: Thread) -> None:
    """Take a reference on the process's newer credential (and limits): threads cache them to avoid locking on
    each use. FreeBSD 11's name (kern_thread.c); 10.x and the lecture's slide call it cred_update_thread."""
    machine = pcpu.machine
    machine.charge(machine.profile.cred_update_ns)
    td.td_ucred = td.td_proc.p_ucred
    td.td_cowgen = td.td_proc.p_cowgen


@kfunc
def ktrsyscall(code: int, narg: int, args: tuple) -> None:
    pcpu.machine.charge(pcpu.machine.profile.ktrace_record_ns)


@kfunc
def ktrsysret(code: int, error: int, retval: int) -> None:
    pcpu.machine.charge(pcpu.machine.profile.ktrace_record_ns)


@kfunc
def ptracestop(td: Thread, sig: str) -> None:
    pcpu.machine.charge(pcpu.machine.profile.ptracestop_ns)


@kfunc
def systrace_probe_func(sa, which: str) -> None:
    """DTrace's syscall provider fires here; each firing costs time: the probe effect."""
    pcpu.machine.charge(pcpu.machine.profile.systrace_probe_ns)


@kfunc
def audit_syscall_enter(code: int, td: Thread) -> None:
    pcpu.machine.charge(pcpu.machine.profile.audit_record_ns)


@kfunc
def audit_syscall_exit(error: int, td: Thread) -> None:
    pcpu.machine.charge(pcpu.machine.profile.audit_record_ns)
