"""The simulated C library: system-call stubs as lib/libc/amd64/SYS.h generates them, and cerror.

Each stub is the five instructions FreeBSD's RSYSCALL macro expands to:

    mov   $SYS_name, %eax
    movq  %rcx, %r10        ; KERNCALL: SYSCALL overwrites %rcx with the return address
    syscall
    jb    cerror            ; carry set: the kernel returned an errno in %rax
    ret

cerror stores %rax in the calling thread's errno and returns -1.
"""

from __future__ import annotations

import functools
import sys
import zlib
from pathlib import Path

from sim.core.events import CallArguments, Cerror, CerrorBranch, SyscallNumber, UserReturn
from sim.core.pcpu import pcpu
from sim.kern.ksyms import PROGRAM_TEXT, libc_symbol
from sim.kern.sysent import SYS
from sim.machine.cpu import PSL_C, register_step
from sim.user import libc_proc
from sim.user.uexec import resume_user

C_ARGUMENT_REGISTERS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")  # the SysV amd64 calling convention
SYSCALL_AT = 8  # offset of the syscall instruction in a stub: mov (5 bytes) + movq (3 bytes)


# The registers `call` writes with n arguments: the first n argument registers, then %rsp and %rip.
_CALL_REGISTERS = tuple((*C_ARGUMENT_REGISTERS[:n], "rsp", "rip") for n in range(len(C_ARGUMENT_REGISTERS) + 1))
# The stub's steps, each writing its registers and making its event in one call (cpu.register_step): every call
# of every stub runs them.
_CALL_STEPS = tuple(register_step("user", *registers) for registers in _CALL_REGISTERS)
_mov_step = register_step("user", "rax", "rip")
_movq_step = register_step("user", "r10", "rip")
_jb_step = register_step("user", "rip")
_ret_step = register_step("user", "rsp", "rip")
_CARRY_SET, _CARRY_CLEAR = CerrorBranch(True), CerrorBranch(False)


@functools.cache
def _call_text(function: str) -> str:
    return f"call {function}"


@functools.cache
def _mov_step_data(name: str) -> tuple[str, SyscallNumber]:
    """The stub's first step for system call `name`: made once per name, shared by every call's event."""
    return f"mov $SYS_{name},%eax", SyscallNumber(SYS[name])


_RETURNS: dict[int, UserReturn] = {}


def _returned(value: int) -> UserReturn:
    """The stub's "ret" payload, made once per value (a loop of calls shares one)."""
    data = _RETURNS.get(value)
    if data is None:
        if len(_RETURNS) >= 4096:
            _RETURNS.clear()  # values that never repeat must not pile up
        data = _RETURNS[value] = UserReturn(value)
    return data


def to_signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


# The simulated C runtime's own modules: a call's site is the first frame outside them (the program's code).
_RUNTIME_FILES = frozenset(
    str(Path(__file__).with_name(name)) for name in ("libc.py", "libc_proc.py", "crt.py", "umem.py")
)
_SITES: dict[tuple[str, int], int] = {}
PROGRAM_TEXT_SPAN = 0xFF0  # call sites are placed in the program text's first page


def _call_site_return_address() -> int:
    """Where a `call` returns to: the instruction after it, at an address of its own per call site in the program
    (the Python line that made the call), so a loop's calls return to the same places every time round."""
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_filename in _RUNTIME_FILES:
        frame = frame.f_back
    site = (frame.f_code.co_filename, frame.f_lineno)
    address = _SITES.get(site)
    if address is None:
        offset = zlib.crc32(f"{Path(site[0]).name}:{site[1]}".encode()) % PROGRAM_TEXT_SPAN
        address = _SITES[site] = PROGRAM_TEXT + offset + 5  # after a 5-byte `call rel32`
    return address


class Libc:
    def __init__(self) -> None:
        self.return_address = PROGRAM_TEXT

    def _step(self, text: str, data: object = None) -> None:
        machine = pcpu.machine
        machine.log.now += machine.profile.user_insn_ns
        machine.emit("user", text, data)

    def call(self, function: str, *args: int) -> None:
        """The caller's side of a C call: arguments into registers, then `call`."""
        machine = pcpu.machine
        cpu = machine.cpu
        args = args[: len(C_ARGUMENT_REGISTERS)]
        values = [value & ((1 << 64) - 1) for value in args] if args else []  # (a comprehension is a call)
        self.return_address = _call_site_return_address()
        values += (cpu.regs["rsp"] - 8, libc_symbol(function))
        if not machine.log.recording:
            text, data = "call", None
        else:
            text, data = _call_text(function), CallArguments(args) if args else None
        _CALL_STEPS[len(args)](machine, machine.profile.user_insn_ns, text, data, *values)

    def syscall(self, name: str, *args: int) -> int:
        """Call the libc stub for system call `name` and return what C code would see."""
        machine = pcpu.machine
        self.call(name, *args)
        # The stub up to its `syscall`: mov $SYS_name,%eax; movq %rcx,%r10.
        stub = libc_symbol(name)
        ns = machine.profile.user_insn_ns
        _mov_step(machine, ns, *_mov_step_data(name), SYS[name], stub + 5)
        syscall_at = stub + SYSCALL_AT
        _movq_step(machine, ns, "movq %rcx,%r10", None, machine.cpu.regs["rcx"], syscall_at)
        machine.syscall_instruction()
        resume_user(syscall_at)  # a restarted call, or a signal handler, may run before the stub goes on
        return self._stub_return()

    def _stub_return(self) -> int:
        """The stub after its `syscall`: carry set means an errno in %rax."""
        machine = pcpu.machine
        regs = machine.cpu.regs
        if regs["rflags"] & PSL_C:
            _jb_step(machine, machine.profile.user_insn_ns, "jb cerror", _CARRY_SET, regs["rip"] + 6)
            return self._cerror()
        _jb_step(machine, machine.profile.user_insn_ns, "jb cerror", _CARRY_CLEAR, regs["rip"] + 6)
        return self._ret(to_signed(regs["rax"]))

    def _cerror(self) -> int:
        machine = pcpu.machine
        cpu, td = machine.cpu, pcpu.curthread
        old = td.td_errno_user
        td.td_errno_user = cpu["rax"]
        machine.log.delta(("errno", td.td_tid, old, td.td_errno_user))
        cpu.set("rax", (1 << 64) - 1)
        cpu.set("rdx", (1 << 64) - 1)
        cpu.set("rip", libc_symbol("cerror"))
        self._step("cerror", Cerror(td.td_errno_user))
        return self._ret(-1)

    def _ret(self, value: int) -> int:
        machine = pcpu.machine
        data = _returned(value) if machine.log.recording else None
        ns, rsp = machine.profile.user_insn_ns, machine.cpu.regs["rsp"]
        _ret_step(machine, ns, "ret", data, rsp + 8, self.return_address)
        return value

    @property
    def errno(self) -> int:
        return pcpu.curthread.td_errno_user

    # The C library's system-call wrappers the programs use.
    def getpid(self) -> int:
        return self.syscall("getpid")

    def _exit(self, status: int) -> None:
        self.syscall("exit", status)
        raise AssertionError("exit returned")  # the kernel never returns from exit

    # Process, signal and thread calls (libc_proc.py has what they share with the kernel's layouts).
    def fork(self, child=None) -> int:
        """fork(2). Python cannot copy this call's stack, so the caller names what the child runs: the child
        comes back from the very same stub with 0 (after the kernel's fork_return path), then runs child()
        and exits with its result (0 if it returns none). The parent gets the child's pid."""
        return libc_proc.fork(self, "fork", child)

    def vfork(self, child=None) -> int:
        """vfork(2): as fork, but the child borrows the parent's address space and the parent waits until
        the child has exec'd or exited."""
        return libc_proc.fork(self, "vfork", child)

    def waitpid(self, pid: int, options: int = 0) -> tuple[int, int]:
        """wait4(2) with a status word on the stack: (pid or -1, status)."""
        return libc_proc.waitpid(self, pid, options)

    def kill(self, pid: int, sig: int) -> int:
        return self.syscall("kill", pid, sig)

    def sigaction(self, sig: int, handler, flags: int = 0, mask: int = 0) -> int:
        """sigaction(2); `handler` is SIG_DFL, SIG_IGN or a function handler(libc, sig, ...)."""
        return libc_proc.sigaction(self, sig, handler, flags, mask)

    def signal(self, sig: int, handler) -> int:
        """signal(3): sigaction with SA_RESTART, as FreeBSD's libc does."""
        return libc_proc.sigaction(self, sig, handler, libc_proc.SA_RESTART, 0)

    def pipe(self) -> tuple[int, int]:
        """pipe(2), which FreeBSD 11's libc implements with pipe2(fds, 0): (read fd, write fd) or (-1, -1)."""
        return libc_proc.fd_pair(self, "pipe2", 0)

    def socketpair(self, domain: int, type_: int, protocol: int = 0) -> tuple[int, int]:
        return libc_proc.fd_pair(self, "socketpair", domain, type_, protocol)

    def pthread_create(self, start, arg: int = 0) -> int:
        """pthread_create(3) via thr_new(2); returns the thread handle for pthread_join, or -1."""
        return libc_proc.pthread_create(self, start, arg)

    def pthread_join(self, thread: int) -> int:
        return libc_proc.pthread_join(self, thread)

    def clock_gettime(self, clock_id: int, tp: int) -> int:
        """clock_gettime(2) through the vdso: no trap for the clocks the shared page's timehands serve."""
        return libc_proc.clock_gettime(self, clock_id, tp)
