"""A lecture-demo kernel module (not part of FreeBSD) whose one system call makes the mistakes the lecture warns of.

FreeBSD's kernel never dereferences a user pointer: it reaches user memory only through copyin/copyout
(sim/kern/support.py), which check the address and catch its faults. A module with SYSCALL_MODULE can add a call
that does otherwise; this one (in lkmnosys slot 210, see syscalls.master) has two bugs:

- L41_BUG_USER_DEREF: `return (*(int *)uap->uaddr);`, a user pointer dereferenced directly. Without SMAP (FreeBSD
  11, the lecture profile) the load simply works: the kernel reads whatever the user pointed it at, the bug is
  silent. With CR4.SMAP set and rflags.AC clear (no stac), the CPU refuses it: a page fault in kernel mode with no
  pcb_onfault, so trap_fatal() prints "Fatal trap 12" and the kernel panics.
- L41_BUG_NULL_DEREF: a field read through a NULL structure pointer: page 0 is never mapped for the kernel, the
  fault has no pcb_onfault, and trap_fatal() prints "Fatal trap 12: page fault while in kernel mode".
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.kern.errno import EINVAL
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread

L41_BUG_USER_DEREF = 0
L41_BUG_NULL_DEREF = 1
NULL_FIELD_OFFSET = 0x10  # the field read through the NULL pointer: struct foo's third word


@syscall_handler
@kfunc
def sys_l41_bug(td: Thread, bug: int, uaddr: int) -> int:
    from sim.kern.support import kernel_deref

    if bug == L41_BUG_USER_DEREF:
        value = kernel_deref(uaddr)
    elif bug == L41_BUG_NULL_DEREF:
        value = kernel_deref(0 + NULL_FIELD_OFFSET)
    else:
        return EINVAL
    td.set_retval(0, value & 0xFFFFFFFF)  # an int
    return 0
