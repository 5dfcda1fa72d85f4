"""Capsicum's capability mode (sys/kern/sys_capability.c, FreeBSD 11).

cap_enter() sets CRED_FLAG_CAPMODE on a new copy of the process's credential. From then on syscallenter
refuses, with ECAPMODE, every system call not marked CAPENABLED. The calling thread keeps its cached
credential until its next system call's thread_cow_update, so the flag takes effect from that call on.
"""

from __future__ import annotations

import copy
import struct

from sim.core.events import CapEnter
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.kernel import syscall_handler
from sim.kern.proc import CRED_FLAG_CAPMODE, Thread, Ucred


def crcopy(cred: Ucred) -> Ucred:
    """A new credential with the same contents (crcopysafe)."""
    new = copy.copy(cred)
    new.cr_audit = copy.copy(cred.cr_audit)
    return new


@syscall_handler
@kfunc
def sys_cap_enter(td: Thread) -> int:
    from sim.kern.subr_syscall import IN_CAPABILITY_MODE

    if IN_CAPABILITY_MODE(td):
        return 0
    p = td.td_proc
    newcred = crcopy(p.p_ucred)
    newcred.cr_flags |= CRED_FLAG_CAPMODE
    p.p_ucred = newcred  # proc_set_cred: the thread's cached td_ucred is now stale
    p.p_cowgen += 1  # PROC_UPDATE_COW(p)
    pcpu.machine.emit("proc", "cap_enter", CapEnter(p.p_pid))
    return 0


@syscall_handler
@kfunc
def sys_cap_getmode(td: Thread, modep: int) -> int:
    from sim.kern.subr_syscall import IN_CAPABILITY_MODE
    from sim.kern.support import copyout

    return copyout(struct.pack("<I", 1 if IN_CAPABILITY_MODE(td) else 0), modep, 4)
