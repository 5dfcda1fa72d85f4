"""getcontext, setcontext and swapcontext (sys/kern/kern_context.c, FreeBSD 11).

setcontext() "rewrites thread register state" (the lecture): it loads a saved context into the trapframe and
returns EJUSTRETURN, so the return path leaves every register as loaded and the thread continues wherever
that context says, never returning from the call. getcontext() saves the registers with %rax cleared, so
that when a setcontext() later resumes that context, getcontext() appears to return 0 a second time.
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.kern.errno import EFAULT, EINVAL, EJUSTRETURN
from sim.kern.kernel import syscall_handler
from sim.kern.machdep import MCONTEXT_SIZE, SIGSET_SIZE, UC_MCONTEXT, pack_ucontext, set_mcontext, unpack_sigset
from sim.kern.proc import Thread

UC_COPY_SIZE = UC_MCONTEXT + MCONTEXT_SIZE  # offsetof(ucontext_t, uc_link): the mask and the registers


@syscall_handler
@kfunc
def sys_getcontext(td: Thread, ucp: int) -> int:
    from sim.kern.support import copyout

    if not ucp:
        return EINVAL
    uc = pack_ucontext(td, td.td_sigmask, clear_ret=True)
    return EFAULT if copyout(uc[:UC_COPY_SIZE], ucp, UC_COPY_SIZE) else 0


@syscall_handler
@kfunc
def sys_setcontext(td: Thread, ucp: int) -> int:
    error = kern_setcontext(td, ucp)
    return error or EJUSTRETURN


@syscall_handler
@kfunc
def sys_swapcontext(td: Thread, oucp: int, ucp: int) -> int:
    from sim.kern.support import copyout

    if not oucp or not ucp:
        return EINVAL
    uc = pack_ucontext(td, td.td_sigmask, clear_ret=True)
    if copyout(uc[:UC_COPY_SIZE], oucp, UC_COPY_SIZE):
        return EFAULT
    return kern_setcontext(td, ucp) or EJUSTRETURN


def kern_setcontext(td: Thread, ucp: int) -> int:
    from sim.kern.kern_sig import kern_sigprocmask_setmask
    from sim.kern.support import copyin

    if not ucp:
        return EINVAL
    uc = bytearray(UC_COPY_SIZE)
    if copyin(ucp, uc, UC_COPY_SIZE) != 0:
        return EFAULT
    error = set_mcontext(td, bytes(uc[UC_MCONTEXT:UC_COPY_SIZE]))
    if error:
        return error
    kern_sigprocmask_setmask(td, unpack_sigset(bytes(uc[:SIGSET_SIZE])))
    return 0
