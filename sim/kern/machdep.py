"""Signal frames and machine contexts for FreeBSD/amd64 (sys/amd64/amd64/machdep.c, sigtramp.S, FreeBSD 11).

sendsig() saves the interrupted user registers (the trapframe) and signal mask as a ucontext in a signal frame
on the user's stack, then points the trapframe at the signal trampoline in the shared page. The trampoline
calls the handler and then sigreturn(), which loads the saved context back into the trapframe and returns
EJUSTRETURN, so the syscall return path leaves those registers exactly as restored. getcontext/setcontext use
the same mcontext layout.
"""

from __future__ import annotations

import struct

from sim.core.events import SignalFrame, SignalStackTrashed
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EFAULT, EINVAL, EJUSTRETURN
from sim.kern.kernel import syscall_handler
from sim.kern.ksyms import USRSTACK
from sim.kern.proc import PCB_FULL_IRET, TRAPFRAME_LAYOUT, TRAPFRAME_UNMODELLED, Thread
from sim.machine.cpu import PSL_C, PSL_D, PSL_T

SHAREDPAGE = USRSTACK  # the shared page sits just above the user stack (VM_MAXUSER_ADDRESS - PAGE_SIZE)
SIGCODE = SHAREDPAGE  # sv_sigcode_base: the signal trampoline is the first thing in the shared page

_KUCSEL, _KUDSEL = 0x43, 0x3B  # user code and data selectors with RPL 3
TF_HASSEGS = 0x1
# psl.h PSL_USERCHANGE: C PF AF Z N T D V NT AC ID, the rflags bits user code may change (EFL_SECURE)
_PSL_USERCHANGE = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | PSL_T | PSL_D | 0x800 | 0x4000 | 0x40000 | 0x200000

# mcontext_t (machine/ucontext.h): mc_onstack, then the trapframe's registers in trapframe order, then the
# FPU state. Registers the simulated trapframe lacks (r12-r15, segment registers) are stored as zero.
MC_REGS = tuple(None if name in TRAPFRAME_UNMODELLED else name for name in TRAPFRAME_LAYOUT[:15])
_MC_HEAD = struct.Struct("<q15QIHHQIHHQ5Qq")  # onstack, 15 registers, trapno fs gs addr flags es ds err, rip cs
#                                            rflags rsp ss, mc_len
MCONTEXT_SIZE = 800
SIGSET_SIZE = 16  # sigset_t: four 32-bit words
UCONTEXT_SIZE = 880  # sigset_t uc_sigmask; mcontext_t uc_mcontext (16-aligned); uc_link; uc_stack; uc_flags
UC_MCONTEXT = 16
SIGF_HANDLER = 0  # struct sigframe: the handler pointer, then the ucontext, then the siginfo
SIGF_UC = 16
SIGF_SI = SIGF_UC + UCONTEXT_SIZE
SIGINFO_SIZE = 80
SIGFRAME_SIZE = SIGF_SI + SIGINFO_SIZE
_SIGINFO = struct.Struct("<iiiiiiqq")  # si_signo, si_errno, si_code, si_pid, si_uid, si_status, si_addr, si_value


def pack_sigset(mask: int) -> bytes:
    return struct.pack("<4I", mask & 0xFFFFFFFF, 0, 0, 0)


def unpack_sigset(data: bytes) -> int:
    return struct.unpack_from("<I", data)[0]


def get_mcontext(td: Thread, clear_ret: bool = False) -> bytes:
    """The thread's user registers as an mcontext; GET_MC_CLEAR_RET makes getcontext() appear to return 0."""
    regs = dict(td.td_frame.regs)
    if clear_ret:
        regs["tf_rax"] = 0
        regs["tf_rdx"] = 0
        regs["tf_rflags"] &= ~PSL_C
    values = [regs[name] if name else 0 for name in MC_REGS]
    head = _MC_HEAD.pack(
        0, *values, regs["tf_trapno"], 0, 0, regs["tf_addr"], regs["tf_flags"], 0, 0, regs["tf_err"],
        regs["tf_rip"], regs["tf_cs"], regs["tf_rflags"], regs["tf_rsp"], regs["tf_ss"], MCONTEXT_SIZE,
    )  # fmt: skip
    return head + bytes(MCONTEXT_SIZE - len(head))


def set_mcontext(td: Thread, mcontext: bytes) -> int:
    """Load an mcontext into the trapframe, refusing what user code may not set (privileged rflags, %cs)."""
    fields = _MC_HEAD.unpack_from(mcontext)
    if fields[-1] != MCONTEXT_SIZE:
        return EINVAL  # mc_len is the "magic" that says this is an mcontext
    registers = fields[1:16]
    trapno, _, _, addr, flags, _, _, err, rip, cs, rflags, rsp, ss = fields[16:29]
    frame = td.td_frame
    if (rflags ^ frame["tf_rflags"]) & ~_PSL_USERCHANGE:
        return EINVAL  # EFL_SECURE: only the user-changeable flags may differ
    if cs & 3 != 3:
        return EINVAL  # CS_SECURE: no privileged code selector
    for name, value in zip(MC_REGS, registers, strict=True):
        if name:
            frame.set(name, value & 0xFFFFFFFFFFFFFFFF)
    for name, value in (("tf_rip", rip), ("tf_rflags", rflags), ("tf_rsp", rsp), ("tf_cs", cs), ("tf_ss", ss)):
        frame.set(name, value & 0xFFFFFFFFFFFFFFFF)
    frame.set("tf_err", err)
    td.td_pcb.pcb_flags |= PCB_FULL_IRET  # every register changed: return with iretq, not sysretq
    return 0


@kfunc
def sendsig(catcher: int, sig: int, code: int, mask: int, siginfo: bool, addr: int = 0) -> None:
    """Build the signal frame on the user stack and send the thread to the trampoline (sv_sendsig)."""
    from sim.kern.kern_sig import SIGILL, sigexit
    from sim.kern.support import copyout

    machine, td = pcpu.machine, pcpu.curthread
    machine.charge(machine.profile.sendsig_ns)
    regs = td.td_frame
    uc = pack_sigset(mask) + get_mcontext(td)
    uc += bytes(UCONTEXT_SIZE - len(uc))
    sp = regs["tf_rsp"] - 128  # skip the red zone the interrupted code may be using
    sfp = (sp - SIGFRAME_SIZE) & ~0xF
    si = _SIGINFO.pack(sig, 0, code, 0, 0, 0, addr, 0)
    frame = struct.pack("<Q8x", catcher) + uc + si + bytes(SIGINFO_SIZE - len(si))
    if copyout(frame, sfp, len(frame)) != 0:
        machine.emit("signal", "sendsig", SignalStackTrashed(td.td_proc.p_pid))
        sigexit(td, SIGILL)
    regs.set("tf_rdi", sig)  # the handler's three arguments
    regs.set("tf_rsi", sfp + SIGF_SI if siginfo else code)
    regs.set("tf_rdx", sfp + SIGF_UC)
    regs.set("tf_rcx", addr)
    regs.set("tf_rsp", sfp)
    regs.set("tf_rip", SIGCODE)
    regs.set("tf_rflags", regs["tf_rflags"] & ~(PSL_T | PSL_D))
    regs.set("tf_cs", _KUCSEL)
    regs.set("tf_ss", _KUDSEL)
    regs.set("tf_flags", TF_HASSEGS)
    td.td_pcb.pcb_flags |= PCB_FULL_IRET
    machine.emit("signal", "sendsig", SignalFrame(sig, sfp, catcher))


@syscall_handler
@kfunc
def sys_sigreturn(td: Thread, sigcntxp: int) -> int:
    """Restore the context the signal interrupted, from the ucontext the trampoline passes back."""
    from sim.kern.kern_sig import kern_sigprocmask_setmask
    from sim.kern.support import copyin

    uc = bytearray(UCONTEXT_SIZE)
    if copyin(sigcntxp, uc, UCONTEXT_SIZE) != 0:
        return EFAULT
    error = set_mcontext(td, bytes(uc[UC_MCONTEXT : UC_MCONTEXT + MCONTEXT_SIZE]))
    if error:
        return error
    kern_sigprocmask_setmask(td, unpack_sigset(bytes(uc[:SIGSET_SIZE])))
    return EJUSTRETURN  # the registers are the restored ones: the return path must not touch them


def pack_ucontext(td: Thread, mask: int, clear_ret: bool) -> bytes:
    uc = pack_sigset(mask) + get_mcontext(td, clear_ret)
    return uc + bytes(UCONTEXT_SIZE - len(uc))


AMD64_GET_FSBASE = 128  # machine/sysarch.h
AMD64_SET_FSBASE = 129
AMD64_GET_GSBASE = 130
AMD64_SET_GSBASE = 131


@syscall_handler
@kfunc
def sys_sysarch(td: Thread, op: int, parms: int) -> int:
    """Machine-specific calls; rtld and libc use AMD64_SET_FSBASE to point %fs at the thread's TLS block.
    Setting a segment base forces the full iretq return (PCB_FULL_IRET) that reloads it."""
    from sim.kern.support import copyin, copyout
    from sim.vm.vm_param import VM_MAXUSER_ADDRESS

    pcb = td.td_pcb
    if op in (AMD64_SET_FSBASE, AMD64_SET_GSBASE):
        raw = bytearray(8)
        if copyin(parms, raw, 8) != 0:
            return EFAULT
        base = struct.unpack("<Q", raw)[0]
        if base >= VM_MAXUSER_ADDRESS:
            return EINVAL
        if op == AMD64_SET_FSBASE:
            pcb.pcb_fsbase = base
        else:
            pcb.pcb_gsbase = base
        pcb.pcb_flags |= PCB_FULL_IRET
        return 0
    if op in (AMD64_GET_FSBASE, AMD64_GET_GSBASE):
        base = getattr(pcb, "pcb_fsbase" if op == AMD64_GET_FSBASE else "pcb_gsbase", 0)
        return EFAULT if copyout(struct.pack("<Q", base), parms, 8) else 0
    return EINVAL
