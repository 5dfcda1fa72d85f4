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

from sim.kern.ksyms import PROGRAM_TEXT, libc_symbol
from sim.kern.pcpu import pcpu
from sim.kern.sysent import SYS
from sim.machine.cpu import PSL_C

C_ARGUMENT_REGISTERS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")  # the SysV amd64 calling convention
SYSCALL_AT = 8  # offset of the syscall instruction in a stub: mov (5 bytes) + movq (3 bytes)


def to_signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


class Libc:
    def __init__(self) -> None:
        self.return_address = PROGRAM_TEXT

    def _step(self, text: str, detail: str = "") -> None:
        machine = pcpu.machine
        machine.charge(machine.profile.user_insn_ns)
        machine.emit("user", text, detail)

    def call(self, function: str, *args: int) -> None:
        """The caller's side of a C call: arguments into registers, then `call`."""
        cpu = pcpu.machine.cpu
        for register, value in zip(C_ARGUMENT_REGISTERS, args, strict=False):
            cpu.set(register, value & ((1 << 64) - 1))
        self.return_address += 5
        cpu.set("rsp", cpu["rsp"] - 8)
        cpu.set("rip", libc_symbol(function))
        arguments = zip(C_ARGUMENT_REGISTERS, args, strict=False)
        self._step(f"call {function}", ", ".join(f"{register}={value:#x}" for register, value in arguments))

    def syscall(self, name: str, *args: int) -> int:
        """Call the libc stub for system call `name` and return what C code would see."""
        machine = pcpu.machine
        cpu = machine.cpu
        self.call(name, *args)
        stub = libc_symbol(name)
        cpu.set("rax", SYS[name])
        cpu.set("rip", stub + 5)
        self._step(f"mov $SYS_{name},%eax", f"system-call number {SYS[name]}")
        cpu.set("r10", cpu["rcx"])
        cpu.set("rip", stub + SYSCALL_AT)
        self._step("movq %rcx,%r10", "syscall will overwrite %rcx, so the 4th argument travels in %r10")
        while cpu["rip"] == stub + SYSCALL_AT:  # ERESTART backs rip up onto the syscall instruction
            machine.syscall_instruction()
        cpu.set("rip", cpu["rip"] + 6)
        if cpu["rflags"] & PSL_C:
            self._step("jb cerror", "carry set: the call failed")
            return self._cerror()
        self._step("jb cerror", "carry clear: not taken")
        return self._ret(to_signed(cpu["rax"]))

    def _cerror(self) -> int:
        machine = pcpu.machine
        cpu, td = machine.cpu, pcpu.curthread
        old = td.td_errno_user
        td.td_errno_user = cpu["rax"]
        machine.log.delta(("errno", td.td_tid, old, td.td_errno_user))
        cpu.set("rax", (1 << 64) - 1)
        cpu.set("rdx", (1 << 64) - 1)
        cpu.set("rip", libc_symbol("cerror"))
        self._step("cerror", f"errno = {td.td_errno_user}; return -1")
        return self._ret(-1)

    def _ret(self, value: int) -> int:
        cpu = pcpu.machine.cpu
        cpu.set("rsp", cpu["rsp"] + 8)
        cpu.set("rip", self.return_address)
        self._step("ret", f"back in the program with {value}")
        return value

    @property
    def errno(self) -> int:
        return pcpu.curthread.td_errno_user

    # The C library's system-call wrappers the programs use.
    def getpid(self) -> int:
        return self.syscall("getpid")

    def getuid(self) -> int:
        return self.syscall("getuid")

    def _exit(self, status: int) -> None:
        self.syscall("exit", status)
        raise AssertionError("exit returned")  # the kernel never returns from exit
