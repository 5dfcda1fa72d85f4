"""The system-call entry and exit glue of sys/amd64/amd64/exception.S (FreeBSD 11): IDTVEC(fast_syscall).

The SYSCALL instruction jumps here (MSR_LSTAR) in ring 0 with interrupts off, still on the user's stack and
with the user's %gs. The glue switches to the kernel's %gs and stack, saves the user registers as a trapframe,
calls amd64_syscall(), then returns with SYSRETQ, or through doreti's IRETQ when the whole register set must be
reloaded (PCB_FULL_IRET, set for instance when a system call is restarted).
"""

from __future__ import annotations

from sim.kern.ksyms import PCPU_BASE, kernel_stack_top
from sim.kern.pcpu import pcpu
from sim.kern.proc import PCB_FULL_IRET, TDF_ASTPENDING, TDF_NEEDRESCHED, Thread
from sim.kern.subr_trap import ast
from sim.kern.trap import amd64_syscall
from sim.machine.cpu import PSL_I, PSL_T, USER_CPL

TF_HASSEGS = 0x1
KUCSEL = 0x43  # user code selector with RPL 3
KUDSEL = 0x3B  # user data selector with RPL 3
SYSCALL_INSN_LEN = 2  # tf_err holds it, so ERESTART can back up tf_rip over the instruction


def Xfast_syscall() -> None:  # noqa: N802 - FreeBSD's symbol name
    machine, td = pcpu.machine, pcpu.curthread
    cpu, costs = machine.cpu, machine.profile
    machine.enter("Xfast_syscall")

    swapgs()
    user_rsp = cpu["rsp"]
    cpu.set("rsp", kernel_stack_top(td.td_tid))
    machine.emit("insn", "movq PCPU(RSP0),%rsp", "switch from the user stack to this thread's kernel stack")

    machine.charge(costs.trapframe_ns)
    tf = td.td_frame
    tf.set("tf_rflags", cpu["r11"])  # SYSCALL left the user's rflags in %r11 ...
    tf.set("tf_rip", cpu["rcx"])  # ... and the return address in %rcx, so the 4th argument came in %r10
    tf.set("tf_rsp", user_rsp)
    for reg in ("rdi", "rsi", "rdx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11"):
        tf.set(f"tf_{reg}", cpu[reg])
    tf.set("tf_rcx", cpu["r10"])
    tf.set("tf_cs", KUCSEL)
    tf.set("tf_ss", KUDSEL)
    tf.set("tf_err", SYSCALL_INSN_LEN)
    tf.set("tf_trapno", 0)
    tf.set("tf_addr", 0)
    tf.set("tf_flags", TF_HASSEGS)
    td.td_pcb.pcb_flags &= ~PCB_FULL_IRET
    machine.emit("insn", "build trapframe", "save the user registers on the kernel stack; tf_err = 2")

    cpu.set("rflags", cpu["rflags"] | PSL_I)
    machine.emit("insn", "sti", "interrupts back on: the kernel may now be preempted")

    amd64_syscall(td, tf["tf_rflags"] & PSL_T)
    _return_to_user(td)


def _return_to_user(td: Thread) -> None:
    machine = pcpu.machine
    cpu = machine.cpu
    while True:
        cpu.set("rflags", cpu["rflags"] & ~PSL_I)
        machine.emit("insn", "cli", "interrupts off while deciding how to return")
        if td.td_pcb.pcb_flags & PCB_FULL_IRET:
            doreti_iret(td)
            return
        machine.charge(machine.profile.flag_test_ns)
        if not td.td_flags & (TDF_ASTPENDING | TDF_NEEDRESCHED):
            machine.emit("skip", "ast", "td_flags & (TDF_ASTPENDING|TDF_NEEDRESCHED) == 0")
            break
        cpu.set("rflags", cpu["rflags"] | PSL_I)
        machine.emit("insn", "sti", "an AST is pending: handle it with interrupts on, then test again")
        ast(td.td_frame)
    sysretq(td)


def swapgs() -> None:
    """Exchange %gs's base with MSR_KERNELGSBASE: the kernel finds its pcpu (and curthread) through %gs."""
    machine = pcpu.machine
    cpu = machine.cpu
    machine.charge(machine.profile.swapgs_ns)
    previous = cpu["gsbase"]
    cpu.set("gsbase", machine.kernel_gsbase_msr)
    machine.kernel_gsbase_msr = previous
    to_kernel = cpu["gsbase"] == PCPU_BASE
    machine.emit("insn", "swapgs", "%gs now points at this CPU's pcpu" if to_kernel else "the user's %gs is back")


def sysretq(td: Thread) -> None:
    machine = pcpu.machine
    cpu, tf = machine.cpu, td.td_frame
    machine.charge(machine.profile.trapframe_ns)
    for reg in ("rdi", "rsi", "rdx", "rax"):
        cpu.set(reg, tf[f"tf_{reg}"])
    cpu.set("r11", tf["tf_rflags"])
    cpu.set("rcx", tf["tf_rip"])
    cpu.set("rsp", tf["tf_rsp"])
    machine.emit("insn", "restore registers", "rax, rdx: return values; r11, rcx: rflags and rip for sysretq")
    swapgs()
    machine.exit("Xfast_syscall")
    machine.charge(machine.profile.sysret_insn_ns)
    cpu.set("rip", cpu["rcx"])
    cpu.set("rflags", cpu["r11"])
    cpu.set("cpl", USER_CPL)
    machine.emit("insn", "sysretq", "back to ring 3 at the instruction after syscall")


def doreti_iret(td: Thread) -> None:
    """The syscall path's full-context return: `jmp doreti`."""
    pcpu.machine.exit("Xfast_syscall")  # jmp doreti: a tail jump, not a call
    doreti(td)


def doreti(td: Thread) -> None:
    """Return to user mode restoring every register from the trapframe, with IRETQ (after traps, signal
    delivery, restarted system calls and a new thread's first return); pending ASTs are handled first."""
    machine = pcpu.machine
    cpu, tf = machine.cpu, td.td_frame
    machine.enter("doreti")
    while True:  # doreti_ast
        cpu.set("rflags", cpu["rflags"] & ~PSL_I)
        machine.charge(machine.profile.flag_test_ns)
        if not td.td_flags & (TDF_ASTPENDING | TDF_NEEDRESCHED):
            machine.emit("skip", "ast", "td_flags & (TDF_ASTPENDING|TDF_NEEDRESCHED) == 0")
            break
        cpu.set("rflags", cpu["rflags"] | PSL_I)
        machine.emit("insn", "sti", "an AST is pending: handle it with interrupts on, then test again")
        ast(tf)
    td.td_pcb.pcb_flags &= ~PCB_FULL_IRET
    machine.charge(machine.profile.trapframe_ns)
    for reg in ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11"):
        cpu.set(reg, tf[f"tf_{reg}"])
    machine.emit("insn", "restore all registers", "doreti_exit: reload the whole trapframe")
    swapgs()
    machine.exit("doreti")
    machine.charge(machine.profile.sysret_insn_ns)
    cpu.set("rip", tf["tf_rip"])
    cpu.set("rflags", tf["tf_rflags"])
    cpu.set("rsp", tf["tf_rsp"])
    cpu.set("cpl", USER_CPL)
    machine.emit("insn", "iretq", "back to ring 3 at tf_rip")
