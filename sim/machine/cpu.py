"""The amd64 CPU as a student needs it: privilege level, registers, flags and control registers.

Every write goes through `set`, which records a ("reg", name, old, new) delta, so the stepper can show what an
instruction changed and rebuild the register file at any step.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.log import EventLog

# rflags bits (sys/x86/include/psl.h)
PSL_C = 0x00000001  # carry: the system-call error flag on FreeBSD
PSL_T = 0x00000100  # trap (single step)
PSL_I = 0x00000200  # interrupt enable
PSL_D = 0x00000400  # direction
PSL_NT = 0x00004000  # nested task
PSL_AC = 0x00040000  # alignment check; with CR4.SMAP set it is the "user access allowed" flag (stac/clac)
PSL_USER = 0x00000202  # reserved bit 1 plus interrupts on: a fresh user thread's rflags

# IA32_FMASK as FreeBSD programs it (amd64/machdep.c): SYSCALL clears these in rflags on entry
SF_MASK = PSL_NT | PSL_T | PSL_I | PSL_C | PSL_D | PSL_AC

# CR4 bits (x86/include/specialreg.h)
CR4_PGE = 0x00000080
CR4_SMEP = 0x00100000
CR4_SMAP = 0x00200000

GENERAL_REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11")
REGISTERS = ("cpl", "rip", *GENERAL_REGISTERS, "rflags", "cr2", "cr3", "cr4", "gsbase")

KERNEL_CPL = 0
USER_CPL = 3


class Cpu:
    def __init__(self, log: EventLog, cpl_changed: Callable[[int], None]) -> None:
        self._log = log
        self._cpl_changed = cpl_changed  # the machine bills time to the ring being left
        self.regs: dict[str, int] = dict.fromkeys(REGISTERS, 0)
        self.regs["cpl"] = USER_CPL
        self.regs["rflags"] = PSL_USER

    def __getitem__(self, name: str) -> int:
        return self.regs[name]

    def set(self, name: str, value: int) -> None:
        regs = self.regs
        old = regs[name]
        if old != value:
            if name == "cpl":
                self._cpl_changed(old)
            regs[name] = value
            log = self._log
            if log.recording:  # EventLog.delta, inlined: no delta is built when nothing records it
                log._pending.append(("reg", name, old, value))

    def set_many(self, names: tuple[str, ...], values) -> None:
        """`set` for each of names (never "cpl") with the matching value, in order: the same deltas, in one call."""
        regs = self.regs
        if self._log.recording:
            pending = self._log._pending
            for name, value in zip(names, values, strict=False):
                old = regs[name]
                if old != value:
                    regs[name] = value
                    pending.append(("reg", name, old, value))
        else:
            regs.update(zip(names, values, strict=False))

    @property
    def cpl(self) -> int:
        return self.regs["cpl"]

    @property
    def carry(self) -> bool:
        return bool(self.regs["rflags"] & PSL_C)
