"""The system-call entry and exit glue of sys/amd64/amd64/exception.S (FreeBSD 11): IDTVEC(fast_syscall).

The SYSCALL instruction jumps here (MSR_LSTAR) in ring 0 with interrupts off, still on the user's stack and
with the user's %gs. The glue switches to the kernel's %gs and stack, saves the user registers as a trapframe,
calls amd64_syscall(), then returns with SYSRETQ, or through doreti's IRETQ when the whole register set must be
reloaded (PCB_FULL_IRET, set for instance when a system call is restarted).
"""

from __future__ import annotations

import operator

from sim.core.events import Sti, Swapgs
from sim.core.pcpu import pcpu
from sim.kern.ksyms import PCPU_BASE, kernel_stack_top
from sim.kern.proc import PCB_FULL_IRET, TDF_ASTPENDING, TDF_NEEDRESCHED, Thread
from sim.kern.subr_trap import ast
from sim.kern.trap import amd64_syscall
from sim.machine.cpu import PSL_I, PSL_T, USER_CPL, field_setter, register_step

TF_HASSEGS = 0x1
KUCSEL = 0x43  # user code selector with RPL 3
KUDSEL = 0x3B  # user data selector with RPL 3
SYSCALL_INSN_LEN = 2  # tf_err holds it, so ERESTART can back up tf_rip over the instruction


# What the entry saves, in its order: SYSCALL left the user's rflags in %r11 and the return address in %rcx, so the
# 4th argument came in %r10 (saved as tf_rcx); the registers are then stored with one set_many (same deltas).
_ENTRY_FIELDS = (
    "tf_rflags", "tf_rip", "tf_rsp", "tf_rdi", "tf_rsi", "tf_rdx", "tf_r8", "tf_r9", "tf_rax", "tf_rbx", "tf_rbp",
    "tf_r10", "tf_r11", "tf_rcx", "tf_cs", "tf_ss", "tf_err", "tf_trapno", "tf_addr", "tf_flags",
)  # fmt: skip
_ENTRY_REGISTERS = operator.itemgetter("r11", "rcx", "rsp", "rdi", "rsi", "rdx", "r8", "r9", "rax", "rbx", "rbp",
                                       "r10", "r11", "r10")  # fmt: skip
_ENTRY_CONSTANTS = (KUCSEL, KUDSEL, SYSCALL_INSN_LEN, 0, 0, TF_HASSEGS)  # tf_cs ... tf_flags
_save_trapframe = field_setter("tf", *_ENTRY_FIELDS)  # tf.set_many(_ENTRY_FIELDS, ...), written out (cpu.py)
_SYSRET_REGISTERS = ("rdi", "rsi", "rdx", "rax", "r11", "rcx", "rsp")
_SYSRET_FIELDS = operator.itemgetter("tf_rdi", "tf_rsi", "tf_rdx", "tf_rax", "tf_rflags", "tf_rip", "tf_rsp")
# The instructions of the path, each writing its registers and making its event in one call (cpu.register_step).
_restore_step = register_step("insn", *_SYSRET_REGISTERS)
_sysretq_step = register_step("insn", "rip", "rflags", "cpl")  # SYSRETQ: %rcx to %rip, %r11 to rflags, ring 3
_rsp_step, _rflags_step = register_step("insn", "rsp"), register_step("insn", "rflags")
_gsbase_step = register_step("insn", "gsbase")

# The payloads of the steps whose words depend on which case they are (made once: the path is hot).
_STI_ENTRY, _STI_AST = Sti(ast_pending=False), Sti(ast_pending=True)
_SWAPGS_TO_KERNEL, _SWAPGS_TO_USER = Swapgs(to_kernel=True), Swapgs(to_kernel=False)

_DORETI_REGISTERS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11")
_DORETI_FIELDS = operator.itemgetter(*(f"tf_{reg}" for reg in _DORETI_REGISTERS))
_IRETQ_REGISTERS = ("rip", "rflags", "rsp")
_IRETQ_FIELDS = operator.itemgetter("tf_rip", "tf_rflags", "tf_rsp")


def Xfast_syscall() -> None:  # noqa: N802 - FreeBSD's symbol name
    machine, td = pcpu.machine, pcpu.curthread
    cpu, costs = machine.cpu, machine.profile
    regs = cpu.regs
    machine.enter("Xfast_syscall")

    swapgs()
    user_rsp = regs["rsp"]
    _rsp_step(machine, 0, "movq PCPU(RSP0),%rsp", None, kernel_stack_top(td.td_tid))

    machine.log.now += costs.trapframe_ns
    tf = td.td_frame
    saved = _ENTRY_REGISTERS(regs)
    _save_trapframe(tf.regs, machine.log, *saved[:2], user_rsp, *saved[3:], *_ENTRY_CONSTANTS)
    td.td_pcb.pcb_flags &= ~PCB_FULL_IRET
    machine.emit("insn", "build trapframe")

    _rflags_step(machine, 0, "sti", _STI_ENTRY, regs["rflags"] | PSL_I)

    amd64_syscall(td, tf.regs["tf_rflags"] & PSL_T)
    _return_to_user(td)


def _return_to_user(td: Thread) -> None:
    machine = pcpu.machine
    cpu = machine.cpu
    while True:
        _rflags_step(machine, 0, "cli", None, cpu.regs["rflags"] & ~PSL_I)
        if td.td_pcb.pcb_flags & PCB_FULL_IRET:
            doreti_iret(td)
            return
        machine.log.now += machine.profile.flag_test_ns
        if not td.td_flags & (TDF_ASTPENDING | TDF_NEEDRESCHED):
            machine.emit("skip", "ast")
            break
        cpu.set("rflags", cpu.regs["rflags"] | PSL_I)
        machine.emit("insn", "sti", _STI_AST)
        ast(td.td_frame)
    sysretq(td)


def swapgs() -> None:
    """Exchange %gs's base with MSR_KERNELGSBASE: the kernel finds its pcpu (and curthread) through %gs."""
    machine = pcpu.machine
    previous = machine.cpu.regs["gsbase"]
    new = machine.kernel_gsbase_msr
    machine.kernel_gsbase_msr = previous
    data = _SWAPGS_TO_KERNEL if new == PCPU_BASE else _SWAPGS_TO_USER
    _gsbase_step(machine, machine.profile.swapgs_ns, "swapgs", data, new)


def sysretq(td: Thread) -> None:
    machine = pcpu.machine
    cpu, tf = machine.cpu, td.td_frame
    log, costs = machine.log, machine.profile
    _restore_step(machine, costs.trapframe_ns, "restore registers", None, *_SYSRET_FIELDS(tf.regs))
    swapgs()
    machine.exit("Xfast_syscall")
    log.now += costs.sysret_insn_ns  # before the switch to ring 3: SYSRETQ is system time
    regs = cpu.regs
    _sysretq_step(machine, 0, "sysretq", None, regs["rcx"], regs["r11"], USER_CPL)


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
            machine.emit("skip", "ast")
            break
        cpu.set("rflags", cpu["rflags"] | PSL_I)
        machine.emit("insn", "sti", _STI_AST)
        ast(tf)
    td.td_pcb.pcb_flags &= ~PCB_FULL_IRET
    machine.charge(machine.profile.trapframe_ns)
    cpu.set_many(_DORETI_REGISTERS, _DORETI_FIELDS(tf.regs))
    machine.emit("insn", "restore all registers")
    swapgs()
    machine.exit("doreti")
    machine.charge(machine.profile.sysret_insn_ns)
    cpu.set_many(_IRETQ_REGISTERS, _IRETQ_FIELDS(tf.regs))
    cpu.set("cpl", USER_CPL)
    machine.emit("insn", "iretq")
