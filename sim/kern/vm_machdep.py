"""Machine-dependent parts of process support (sys/amd64/amd64/vm_machdep.c)."""

from __future__ import annotations

from sim.core.events import SyscallResult
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EJUSTRETURN, ERESTART
from sim.kern.proc import PCB_FULL_IRET, Thread
from sim.machine.cpu import PSL_C


@kfunc
def cpu_set_syscall_retval(td: Thread, error: int) -> None:
    """sv_set_syscall_retval: success in rax/rdx with carry clear; failure as errno in rax with carry set."""
    machine = pcpu.machine
    machine.log.now += machine.profile.set_retval_ns
    frame = td.td_frame
    if error == 0:
        retval = td.td_retval
        frame.set_many(("tf_rax", "tf_rdx", "tf_rflags"), (retval[0], retval[1], frame.regs["tf_rflags"] & ~PSL_C))
        machine.emit("sysret", "success", _succeeded(retval[0]) if machine.log.recording else None)
    elif error == ERESTART:
        # 'syscall' is 2 bytes, saved in tf_err: back up over it so the call runs again. %r10 (which held %rcx)
        # is restored for that next run, and only a full iretq return reloads all the argument registers.
        frame.set("tf_rip", frame["tf_rip"] - frame["tf_err"])
        frame.set("tf_r10", frame["tf_rcx"])
        td.td_pcb.pcb_flags |= PCB_FULL_IRET
        machine.emit("sysret", "ERESTART", _RESTARTED)
    elif error == EJUSTRETURN:
        machine.emit("sysret", "EJUSTRETURN", _JUSTRETURNED)
    else:
        frame.set("tf_rax", error)
        frame.set("tf_rflags", frame["tf_rflags"] | PSL_C)
        machine.emit("sysret", "error", SyscallResult(error, 0))


_RESTARTED, _JUSTRETURNED = SyscallResult(ERESTART, 0), SyscallResult(EJUSTRETURN, 0)
_SUCCESSES: dict[int, SyscallResult] = {}


def _succeeded(rax: int) -> SyscallResult:
    """The "sysret success" payload, made once per value: a loop of calls shares one (time and memory)."""
    data = _SUCCESSES.get(rax)
    if data is None:
        if len(_SUCCESSES) >= 4096:
            _SUCCESSES.clear()  # values that never repeat (addresses, byte counts) must not pile up
        data = _SUCCESSES[rax] = SyscallResult(0, rax)
    return data
