"""The page-fault half of sys/amd64/amd64/trap.c and exception.S (FreeBSD 11): IDTVEC(page), trap(),
trap_pfault() and trap_fatal().

When the MMU cannot translate an address the CPU takes exception 14 (#PF): it saves the faulting address in %cr2,
pushes an error code (present? write? user? instruction fetch?) and the interrupted context, and jumps through
the IDT to Xpage, in ring 0. trap() counts the trap (v_trap) and hands page faults to trap_pfault(), which asks
vm_fault() to make the page available. Then doreti returns with IRETQ, and the faulting instruction runs again.

What happens when vm_fault cannot help depends on where the fault came from:
  - user mode: the thread gets SIGSEGV (trapsignal);
  - kernel mode inside copyin/copyout (pcb_onfault set): the saved %rip is replaced by pcb_onfault, so the IRETQ
    lands in the copy routine's fault handler, which returns EFAULT;
  - kernel mode otherwise (a kernel bug, such as a NULL dereference, or a user page touched while SMAP forbids
    it): trap_fatal() prints FreeBSD's "Fatal trap 12" report and the machine panics.
"""

from __future__ import annotations

import operator

from sim.core.events import KernelIretq, OnFaultResume, Panic, Trap, TrapframeBuilt
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.exception import KUCSEL, KUDSEL, doreti, swapgs
from sim.kern.ksyms import kernel_stack_top, kernel_symbol
from sim.kern.proc import Trapframe
from sim.kern.subr_trap import userret
from sim.machine.cpu import KERNEL_CPL, PSL_AC, PSL_I, PSL_NT, PSL_T
from sim.machine.machine import MachineHalted
from sim.machine.mmu import (
    PGEX_I,
    PGEX_P,
    PGEX_RSV,
    PGEX_U,
    PGEX_W,
    GeneralProtection,
    PageFault,
)
from sim.vm.vm_fault import vm_fault
from sim.vm.vm_param import (
    KERN_INVALID_ADDRESS,
    KERN_PROTECTION_FAILURE,
    KERN_SUCCESS,
    VM_MAXUSER_ADDRESS,
    VM_MIN_KERNEL_ADDRESS,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    trunc_page,
)

# machine/trap.h: FreeBSD's trap type numbers (tf_trapno), not the IDT vectors
T_PROTFLT = 9
T_PAGEFLT = 12
TRAP_MSG = {T_PROTFLT: "general protection fault", T_PAGEFLT: "page fault"}
IDT_VECTOR = {T_PROTFLT: 13, T_PAGEFLT: 14}
IDT_ENTRY = {T_PROTFLT: "Xprot", T_PAGEFLT: "Xpage"}

KCSEL = 0x20  # kernel code selector (GCODE_SEL << 3)
KDSEL = 0x28
SEL_RPL_MASK = 3
SEGV_MAPERR = 1  # sys/signal.h si_code values
SEGV_ACCERR = 2
BUS_OBJERR = 3


class OnFault(Exception):
    """Control resumes at pcb_onfault: the copy routine's fault label (copy_fault) runs next."""


class KernelTrapframe(Trapframe):
    """A trapframe pushed on the kernel stack by a fault taken in kernel mode (the thread's td_frame, which holds
    its user registers, is left alone). Its changes are recorded as ("ktf", field, old, new)."""

    __slots__ = ()
    delta_kind = "ktf"

    def set(self, name: str, value: int) -> None:
        old = self.regs[name]
        if old != value:
            self.regs[name] = value
            pcpu.machine.log.delta(("ktf", name, old, value))


def TRAPF_USERMODE(frame: Trapframe) -> bool:  # noqa: N802 - the kernel's macro
    return (frame["tf_cs"] & SEL_RPL_MASK) == SEL_RPL_MASK


# -- the CPU's side: exception delivery ------------------------------------------------------------------------------


_SAVED_REGISTERS = tuple(
    (f"tf_{reg}", reg) for reg in ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11")
)
_ENTRY_ADDRESS: dict[int, int] = {}
_SAVED_FIELDS = tuple(field for field, _ in _SAVED_REGISTERS)
_saved_values = operator.itemgetter(*(reg for _, reg in _SAVED_REGISTERS))
_saved_in_frame = operator.itemgetter(*_SAVED_FIELDS)


def _entry_address(trapno: int) -> int:
    address = _ENTRY_ADDRESS.get(trapno)
    if address is None:
        address = _ENTRY_ADDRESS[trapno] = kernel_symbol(IDT_ENTRY[trapno])
    return address


def _load(target, values: dict, recording: bool) -> None:
    """Write registers (of the CPU or a trapframe): one recorded delta each when recording, else in one go."""
    if recording:
        for name, value in values.items():
            target.set(name, value)
    else:
        target.regs.update(values)


def user_fault(fault: PageFault | GeneralProtection) -> None:
    """An access made in ring 3 failed: take the exception, handle it, and return to user mode (IRETQ).

    Fast-forward: with recording off, a demand-zero fault exactly like one already handled is replayed instead
    (sim/kern/fastforward.py): the same state changes, time and event count as the full path.
    """
    if pcpu.machine.log.recording or type(fault) is not PageFault:
        _user_fault(fault)
    elif not fastforward.user_fault_unrecorded(fault.va, fault.err, fault):
        _user_fault(fault)


# What the CPU loads on a trap from user mode (the IDT entry, the kernel stack, %cr2 for #PF), in that order, and
# what Xpage/Xprot save in the trapframe: the registers, the interrupted context, and the trap's own fields.
_ENTRY_REGISTERS = {T_PAGEFLT: ("rsp", "rflags", "rip", "cr2"), T_PROTFLT: ("rsp", "rflags", "rip")}
_USER_FRAME_FIELDS = (*_SAVED_FIELDS, "tf_rip", "tf_rsp", "tf_rflags", "tf_cs", "tf_ss", "tf_trapno", "tf_err",
                      "tf_addr")  # fmt: skip


def _user_fault(fault: PageFault | GeneralProtection) -> None:
    machine, td = pcpu.machine, pcpu.curthread
    cpu, costs = machine.cpu, machine.profile
    recording = machine.log.recording
    trapno, err, addr = _decode(fault)
    regs = cpu.regs
    # The CPU pushes the interrupted context, switches to the kernel stack and jumps through the IDT.
    user_rsp, user_rip, user_rflags = regs["rsp"], regs["rip"], regs["rflags"]
    cpu.set("cpl", KERNEL_CPL)
    machine.log.now += costs.trap_entry_ns
    # The interrupt gate clears IF, TF and NT; a kernel with SMAP support also clears AC on entry (clac).
    entry_rflags = user_rflags & ~(PSL_I | PSL_T | PSL_NT | (machine.sf_mask & PSL_AC))
    cpu.set_many(_ENTRY_REGISTERS[trapno], (kernel_stack_top(td.td_tid), entry_rflags, _entry_address(trapno), addr))
    machine.emit("trap", _trap_name(trapno), Trap(trapno, err, addr, True) if recording else None)
    machine.enter(IDT_ENTRY[trapno])
    swapgs()
    machine.log.now += costs.trapframe_ns
    tf = td.td_frame
    saved = (*_saved_values(regs), user_rip, user_rsp, user_rflags, KUCSEL, KUDSEL, trapno, err, addr)
    tf.set_many(_USER_FRAME_FIELDS, saved)
    machine.emit("insn", "build trapframe", TrapframeBuilt(trapno, err, addr, True, user_rip) if recording else None)
    trap(tf)
    machine.exit(IDT_ENTRY[trapno])  # jmp doreti
    doreti(td)


def kernel_fault(fault: PageFault | GeneralProtection, rip: int) -> None:
    """An access made in ring 0 (by `rip`) failed: take the exception on the kernel stack and handle it.

    Returns when the access can be retried; raises OnFault when trap() sent control to pcb_onfault, and
    MachineHalted (from panic) when the fault was fatal.

    Fast-forward: with recording off, a copy routine's demand-zero fault exactly like one already handled is
    replayed, as user_fault does for user-mode faults (sim/kern/fastforward.py).
    """
    if not pcpu.machine.log.recording and type(fault) is PageFault and fastforward.kernel_fault_unrecorded(fault, rip):
        return
    _kernel_fault(fault, rip)


def _kernel_fault(fault: PageFault | GeneralProtection, rip: int) -> None:
    machine = pcpu.machine
    cpu, costs = machine.cpu, machine.profile
    recording = machine.log.recording
    trapno, err, addr = _decode(fault)
    machine.charge(costs.trap_entry_ns)
    rflags = cpu["rflags"]
    entry = {"rflags": rflags & ~(PSL_I | PSL_T | PSL_NT), "rip": _entry_address(trapno)}
    if trapno == T_PAGEFLT:
        entry["cr2"] = addr
    _load(cpu, entry, recording)
    machine.emit("trap", _trap_name(trapno), Trap(trapno, err, addr, False) if recording else None)
    machine.enter(IDT_ENTRY[trapno])
    machine.charge(costs.trapframe_ns)
    frame = KernelTrapframe()
    saved = {"tf_rip": rip, "tf_rsp": cpu["rsp"], "tf_rbp": cpu["rbp"], "tf_rflags": rflags, "tf_cs": KCSEL}
    saved.update(tf_ss=KDSEL, tf_trapno=trapno, tf_err=err, tf_addr=addr)
    _load(frame, saved, recording)
    machine.emit("insn", "build trapframe", TrapframeBuilt(trapno, err, addr, False, rip) if recording else None)
    trap(frame)
    machine.exit(IDT_ENTRY[trapno])
    machine.enter("doreti")
    machine.charge(costs.trapframe_ns)
    machine.exit("doreti")
    machine.charge(costs.iretq_ns)
    _load(cpu, {"rip": frame["tf_rip"], "rflags": frame["tf_rflags"]}, recording)
    machine.emit("insn", "iretq", KernelIretq(frame["tf_rip"], frame["tf_rip"] != rip) if recording else None)
    if frame["tf_rip"] != rip:
        raise OnFault()


def _decode(fault: PageFault | GeneralProtection) -> tuple[int, int, int]:
    if isinstance(fault, PageFault):
        return T_PAGEFLT, fault.err, fault.va
    return T_PROTFLT, 0, fault.va


def _trap_name(trapno: int) -> str:
    return f"#{'PF' if trapno == T_PAGEFLT else 'GP'}"


def fault_code_text(err: int) -> str:
    """trap_fatal's wording of a page-fault error code: "supervisor read data, page not present"."""
    if err & PGEX_RSV:
        why = "reserved bits in PTE"
    else:
        why = "protection violation" if err & PGEX_P else "page not present"
    return (
        f"{'user' if err & PGEX_U else 'supervisor'} {'write' if err & PGEX_W else 'read'} "
        f"{'instruction' if err & PGEX_I else 'data'}, {why}"
    )


# -- trap() ------------------------------------------------------------------------------------------------------


@kfunc
def trap(frame: Trapframe) -> None:
    """Exception, fault and trap handler: every trap but the system call comes here."""
    vm = pcpu.kernel.vm
    vm.cnt.v_trap += 1
    td = pcpu.curthread
    trapno = frame["tf_trapno"]
    if TRAPF_USERMODE(frame):
        if trapno == T_PAGEFLT:
            result = trap_pfault(frame, True)
            if result == -1:
                return
            if result == 0:
                userret(td, frame)
                return
            signo, ucode = result
        else:
            signo, ucode = _sigbus(), BUS_OBJERR
        _trapsignal(td, signo, ucode, frame["tf_addr"])
        userret(td, frame)
        return
    if trapno == T_PAGEFLT:
        trap_pfault(frame, False)
        return
    if trapno == T_PROTFLT and td.td_pcb.pcb_onfault:
        frame.set("tf_rip", td.td_pcb.pcb_onfault)
        return
    trap_fatal(frame, 0)


def _sigbus() -> int:
    from sim.kern.kern_sig import SIGBUS

    return SIGBUS


def _trapsignal(td, signo: int, ucode: int, addr: int) -> None:
    from sim.kern.kern_sig import trapsignal

    trapsignal(td, signo, ucode, addr)


@kfunc
def trap_pfault(frame: Trapframe, usermode: bool):
    """Resolve a page fault: 0 if handled, -1 if fatal, else (signal, si_code) for a user-mode failure."""
    td = pcpu.curthread
    p = td.td_proc
    vm = pcpu.kernel.vm
    vm.cnt.fault_usermode = usermode
    eva = frame["tf_addr"]
    err = frame["tf_err"]
    if eva >= VM_MIN_KERNEL_ADDRESS or p.p_vmspace is None:
        # Kernel addresses are mapped at boot and never fault legitimately (the kernel map is not modelled).
        if usermode:
            vm.cnt.count_fault("protection" if err & PGEX_P else "unmapped")
            return _sigsegv(), SEGV_MAPERR
        vm.cnt.count_fault("unmapped")
        return _kernel_nogo(td, frame, eva)
    map = p.p_vmspace.vm_map
    if not usermode and (trap_is_smap(frame) or not td.td_pcb.pcb_onfault):
        # The kernel touched user memory outside a copy routine: a bug, never handled as a normal fault.
        vm.cnt.count_fault("protection" if err & PGEX_P else "unmapped")
        trap_fatal(frame, eva)
        return -1
    if err & PGEX_RSV:
        trap_fatal(frame, eva)
        return -1
    if err & PGEX_W:
        ftype = VM_PROT_WRITE
    elif err & PGEX_I:
        ftype = VM_PROT_EXECUTE
    else:
        ftype = VM_PROT_READ
    if eva >= VM_MAXUSER_ADDRESS:
        rv = KERN_INVALID_ADDRESS  # no user map entry can contain it
        vm.cnt.count_fault("unmapped")
    else:
        rv = vm_fault(map, trunc_page(eva), ftype, 0)
    vm.cnt.fault_usermode = False  # vm_fault called from anywhere else (e.g. vm_fault_quick_hold) is the kernel's
    if rv == KERN_SUCCESS:
        return 0
    if not usermode:
        return _kernel_nogo(td, frame, eva)
    # FreeBSD 11 gives binaries of its era SIGSEGV for both (machdep.prot_fault_translation autodetect).
    return _sigsegv(), SEGV_ACCERR if rv == KERN_PROTECTION_FAILURE else SEGV_MAPERR


def _sigsegv() -> int:
    from sim.kern.kern_sig import SIGSEGV  # kern_sig imports much of the kernel: loaded when first needed

    return SIGSEGV


def _kernel_nogo(td, frame: Trapframe, eva: int) -> int:
    if td.td_pcb.pcb_onfault:
        frame.set("tf_rip", td.td_pcb.pcb_onfault)
        pcpu.machine.emit("hook", "pcb_onfault", OnFaultResume(td.td_pcb.pcb_onfault))
        return 0
    trap_fatal(frame, eva)
    return -1


def trap_is_smap(frame: Trapframe) -> bool:
    """A kernel access to a present user page with rflags.AC clear, while CR4.SMAP is on."""
    from sim.machine.cpu import CR4_SMAP

    smap = bool(pcpu.machine.cpu["cr4"] & CR4_SMAP)
    return (
        smap and (frame["tf_err"] & (PGEX_P | PGEX_U | PGEX_I | PGEX_RSV)) == PGEX_P and not frame["tf_rflags"] & PSL_AC
    )


@kfunc
def trap_fatal(frame: Trapframe, eva: int) -> None:
    """Print the fatal-trap report to the console, then panic: the machine stops."""
    td = pcpu.curthread
    p = td.td_proc
    trapno = frame["tf_trapno"]
    code = frame["tf_err"]
    mode = "user" if TRAPF_USERMODE(frame) else "kernel"
    lines = [
        "",
        "",
        f"Fatal trap {trapno}: {TRAP_MSG.get(trapno, 'unknown')} while in {mode} mode",
        "cpuid = 0; apic id = 00",
    ]
    if trapno == T_PAGEFLT:
        lines.append(f"fault virtual address\t= {eva:#x}")
        lines.append(f"fault code\t\t= {fault_code_text(code)}")
    rflags = frame["tf_rflags"]
    eflags = ("trace trap, " if rflags & PSL_T else "") + ("interrupt enabled, " if rflags & PSL_I else "")
    lines += [
        f"instruction pointer\t= {frame['tf_cs']:#x}:{frame['tf_rip']:#x}",
        f"stack pointer\t        = {frame['tf_ss']:#x}:{frame['tf_rsp']:#x}",
        f"frame pointer\t        = {frame['tf_ss']:#x}:{frame['tf_rbp']:#x}",
        # the code segment's descriptor, as sdtossd() decodes it: the kernel's flat 64-bit code segment
        "code segment\t\t= base 0x0, limit 0xfffff, type 0x1b",
        "\t\t\t= DPL 0, pres 1, long 1, def32 0, gran 1"
        if not TRAPF_USERMODE(frame)
        else "\t\t\t= DPL 3, pres 1, long 1, def32 0, gran 1",
        f"processor eflags\t= {eflags}IOPL = {(rflags >> 12) & 3}",
        f"current process\t\t= {p.p_pid} ({p.p_comm})",
        f"trap number\t\t= {trapno}",
    ]
    pcpu.kernel.console.append("\n".join(lines) + "\n")
    panic(TRAP_MSG.get(trapno, "unknown trap"))


def panic(message: str) -> None:
    """The kernel gives up: print "panic: ...", record it, and halt the simulated machine."""
    machine = pcpu.machine
    pcpu.kernel.console.append(f"panic: {message}\ncpuid = 0\n")
    machine.emit("panic", "panic", Panic(message))
    raise MachineHalted(message)


# Fast-forward builds on this module's trap entry (and user_fault and kernel_fault call it): imported last.
from sim.kern import fastforward  # noqa: E402
