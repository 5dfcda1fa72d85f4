"""Audit system calls (sys/security/audit/audit_syscalls.c, FreeBSD 11, built with `options AUDIT` as
GENERIC is): getauid() returns the process's audit user id, the lecture's example of a system call's body."""

from __future__ import annotations

import struct

from sim.core.kfunc import kfunc
from sim.kern.errno import ENOSYS
from sim.kern.kern_priv import PRIV_AUDIT_GETAUDIT, priv_check
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread, jailed


@syscall_handler
@kfunc
def sys_getauid(td: Thread, auid: int) -> int:
    from sim.kern.support import copyout

    if jailed(td.td_ucred):
        return ENOSYS  # lightweight virtualisation: inside a jail, auditing does not exist
    error = priv_check(td, PRIV_AUDIT_GETAUDIT)
    if error:
        return error
    # The kernel cannot store to user memory directly: copyout checks the address and may fault.
    return copyout(struct.pack("<I", td.td_ucred.cr_audit.ai_auid), auid, 4)
