"""fork() and vfork() (sys/kern/kern_fork.c, FreeBSD 11), with the machine-dependent cpu_fork() of
sys/amd64/amd64/vm_machdep.c and fork_trampoline of exception.S.

fork() "returns twice". The parent returns from the system call the ordinary way, with the child's pid in
%rax. The child never made the call: cpu_fork() gives it a copy of the parent's trapframe with %rax = 0 and
the carry clear, and a kernel context that starts at fork_trampoline, so the first time the scheduler runs
it, it goes fork_exit -> fork_return -> userret -> doreti -> iretq, and arrives in user mode just after the
`syscall` instruction of the parent's fork stub, as if returning from fork() with 0.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core.events import Fork, ForkExit
from sim.core.kfunc import gate, kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.errno import EAGAIN, ENOMEM
from sim.kern.kernel import syscall_handler
from sim.kern.ksyms import kernel_stack_top, kernel_symbol
from sim.kern.proc import (
    P_KPROC,
    P_PPWAIT,
    P_TRACED,
    PCB_FULL_IRET,
    PRS_NEW,
    PRS_NORMAL,
    TDP_RFPPWAIT,
    Proc,
    Thread,
)
from sim.machine.cpu import KERNEL_CPL, PSL_C

# rfork(2) flags (sys/unistd.h)
RFFDG = 1 << 2  # copy the descriptor table
RFPROC = 1 << 4  # make a new process
RFMEM = 1 << 5  # share the address space (vfork)
RFPPWAIT = 1 << 31  # the parent sleeps until the child execs or exits

MAXPROC = 6164  # kern.maxproc on a small machine; fork fails with EAGAIN beyond it

KTR_SYSRET = 2
SYS_fork = 2


@syscall_handler
@kfunc
def sys_fork(td: Thread) -> int:
    error, pid = fork1(td, RFFDG | RFPROC)
    if error == 0:
        td.set_retval(0, pid)  # the parent's return value: the child's pid
        td.set_retval(1, 0)
    return error


@syscall_handler
@kfunc
def sys_vfork(td: Thread) -> int:
    error, pid = fork1(td, RFFDG | RFPROC | RFPPWAIT | RFMEM)
    if error == 0:
        td.set_retval(0, pid)
        td.set_retval(1, 0)
    return error


@kfunc
def fork1(td: Thread, flags: int) -> tuple[int, int]:
    kernel = pcpu.kernel
    p1 = td.td_proc
    if sum(1 for p in kernel.procs if not p.p_flag & P_KPROC) >= MAXPROC:
        return EAGAIN, 0
    vm2 = None
    if not flags & RFMEM:
        vm2 = vmspace_fork_of(p1)  # copy-on-write copy of the address space (the VM model's work)
        if vm2 is False:
            return ENOMEM, 0
    td2 = kernel.new_process(p1.p_comm, p1.p_ucred)
    p2 = td2.td_proc
    do_fork(td, p2, td2, vm2, flags)
    return 0, p2.p_pid


@kfunc
def do_fork(td: Thread, p2: Proc, td2: Thread, vm2: object, flags: int) -> None:
    from sim.kern.kern_descrip import fdcopy, fdshare
    from sim.kern.kern_sig import sigacts
    from sim.kern.sched import sched_add

    machine = pcpu.machine
    machine.charge(machine.profile.fork_ns)
    p1 = td.td_proc
    p2.p_state = PRS_NEW
    p2.p_fd = fdcopy(p1.p_fd) if flags & RFFDG else fdshare(p1.p_fd)
    p2.p_sigacts = sigacts(p1).copy()
    p2.p_flag = p1.p_flag & ~(P_TRACED | P_PPWAIT)
    td2.td_sigmask = td.td_sigmask
    td2.td_ucred = td.td_ucred
    td2.td_priority = td2.td_user_pri = td.td_user_pri
    if flags & RFPPWAIT:
        p2.p_flag |= P_PPWAIT
    p2.p_pptr = p1
    p1.p_children.append(p2)
    vm_forkproc(td, p2, td2, vm2, flags)
    p2.p_state = PRS_NORMAL
    sdt_fire("proc", ("create",))  # SDT_PROBE3(proc, , , create, p2, p1, flags)
    machine.emit("proc", "fork", Fork(p1.p_pid, p2.p_pid, td2.td_tid))
    if flags & RFPPWAIT:
        td.td_pflags |= TDP_RFPPWAIT  # syscallret() will wait until the child execs or exits
        td.td_rfppwait_p = p2
    sched_add(td2)


def vmspace_fork_of(p1: Proc) -> object:
    """vmspace_fork() of the parent's address space, when the VM model gives processes one."""
    vm1 = getattr(p1, "p_vmspace", None)
    if vm1 is None:
        return None
    from sim.vm.vm_map import vmspace_fork

    # FreeBSD gives the child its pid only later, in do_fork; the simulator names each address space after the
    # process that owns it (the VM view's "pid N"), so the child's is named for the pid it is about to get.
    vm2 = vmspace_fork(vm1, f"pid {pcpu.kernel.next_pid}")
    return False if vm2 is None else vm2


def vm_forkproc(td: Thread, p2: Proc, td2: Thread, vm2: object, flags: int) -> None:
    """Give the child its address space (shared for vfork) and its machine context (cpu_fork)."""
    p1 = td.td_proc
    if flags & RFMEM:
        vm1 = getattr(p1, "p_vmspace", None)
        if vm1 is not None:
            p2.p_vmspace = vm1
            vm1.vm_refcnt += 1
    elif vm2 is not None:
        p2.p_vmspace = vm2
    cpu_fork(td, p2, td2, flags)


@kfunc
def cpu_fork(td1: Thread, p2: Proc, td2: Thread, flags: int) -> None:
    """Copy the parent's trapframe as the child's way back to user mode, and start its kernel context at
    fork_trampoline (sys/amd64/amd64/vm_machdep.c)."""
    from sim.kern.sched import thread_start

    frame1, frame2 = td1.td_frame, td2.td_frame
    frame2.regs.update(frame1.regs)
    frame2.regs["tf_rax"] = 0  # the child returns zero ...
    frame2.regs["tf_rflags"] &= ~PSL_C  # ... successfully
    frame2.regs["tf_rdx"] = 1
    td2.td_pcb.pcb_flags = td1.td_pcb.pcb_flags | PCB_FULL_IRET  # new thread: return with iretq
    pcpu.machine.emit("proc", "cpu_fork")
    td2.td_md_regs = dict(pcpu.machine.cpu.regs)
    td2.td_md_regs.update(cpl=KERNEL_CPL, rip=kernel_symbol("fork_trampoline"), rsp=kernel_stack_top(td2.td_tid))
    # The user code the child resumes (the simulator's stand-in for its copy of the parent's user stack).
    td2.td_ucontinuation = td1.td_ucontinuation
    thread_start(td2, lambda: _child_start(td2))


def _child_start(td: Thread) -> None:
    """A new thread's whole life: the kernel's way out to user mode, then user code until it exits."""
    fork_trampoline(td, fork_return, td)
    # In user mode now: a fork child continues the parent's Python code (td_ucontinuation); a new thread
    # runs whatever code is at %rip (its start routine), as the CPU would fetch it.
    if td.td_ucontinuation is not None:
        td.td_ucontinuation()
    else:
        pcpu.machine.user_jump(pcpu.machine.cpu["rip"])


def fork_trampoline(td: Thread, callout: Callable, arg: object) -> None:
    """A new thread's first instructions: call fork_exit(callout, arg, frame), then `jmp doreti`."""
    from sim.kern.exception import doreti

    machine = pcpu.machine
    machine.enter("fork_trampoline")
    fork_exit(callout, arg, td.td_frame)
    machine.exit("fork_trampoline")
    doreti(td)


@kfunc
def fork_exit(callout: Callable, arg: object, frame) -> None:
    """Where a new thread starts instead of returning from mi_switch(): finish the switch, then call its
    function (fork_return for a forked child, the thread's main loop for a kernel thread)."""
    td = pcpu.curthread
    pcpu.machine.emit("proc", "fork_exit", ForkExit(td.td_tid, td.td_proc.p_comm))
    callout(arg, frame)
    if td.td_proc.p_flag & P_KPROC:
        raise RuntimeError(f"kernel thread {td.td_proc.p_comm!r} exited prematurely")


@kfunc
def fork_return(td: Thread, frame) -> None:
    """The child's half of fork()'s return: what syscallret() does for the parent."""
    from sim.kern.subr_syscall import KTRPOINT, ktrsysret
    from sim.kern.subr_trap import userret

    userret(td, frame)
    if gate("ktrsysret", None, KTRPOINT(td, KTR_SYSRET)):
        ktrsysret(SYS_fork, 0, 0)


@kfunc
def fork_rfppwait(td: Thread) -> None:
    """vfork: the parent waits, after the system call, until the child has exec'd or exited."""
    from sim.kern.kern_synch import msleep
    from sim.kern.sched import PWAIT

    td.td_pflags &= ~TDP_RFPPWAIT
    p2 = td.td_rfppwait_p
    td.td_rfppwait_p = None
    while p2.p_flag & P_PPWAIT:
        msleep(p2.p_pwait, PWAIT, "ppwait", 1_000_000_000)  # cv_timedwait(&p2->p_pwait, ..., hz)


def release_ppwait(p: Proc) -> None:
    """exec or exit of a vfork child: let the parent go on (it sleeps on p_pwait)."""
    from sim.kern.kern_synch import wakeup

    if p.p_flag & P_PPWAIT:
        p.p_flag &= ~P_PPWAIT
        wakeup(p.p_pwait)
