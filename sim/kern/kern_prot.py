"""Process identity system calls (sys/kern/kern_prot.c)."""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread


@syscall_handler
@kfunc
def sys_getpid(td: Thread) -> int:
    machine = pcpu.machine
    machine.log.now += machine.profile.sys_getpid_ns  # machine.charge, inlined: the loop benchmark's call
    td.set_retval(0, td.td_proc.p_pid)
    return 0


@syscall_handler
@kfunc
def sys_getuid(td: Thread) -> int:
    pcpu.machine.charge(pcpu.machine.profile.sys_getpid_ns)
    td.set_retval(0, td.td_ucred.cr_ruid)
    return 0


@syscall_handler
@kfunc
def sys_getppid(td: Thread) -> int:
    pcpu.machine.charge(pcpu.machine.profile.sys_getpid_ns)
    parent = td.td_proc.p_pptr
    td.set_retval(0, parent.p_pid if parent else 1)  # an orphan's parent is init
    return 0


@syscall_handler
@kfunc
def sys_issetugid(td: Thread) -> int:
    """1 if the process became set-user/group-id (P_SUGID) since its last exec; never, here."""
    pcpu.machine.charge(pcpu.machine.profile.sys_getpid_ns)
    td.set_retval(0, 0)
    return 0
