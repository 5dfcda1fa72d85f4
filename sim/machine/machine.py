"""The simulated machine: one CPU, the event log, and simulated time.

Time is integer nanoseconds. Every cost is charged through `charge`, which also bills it to user or system time
by the CPU's current privilege level, as the kernel's statclock would.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.log import EventLog
from sim.machine.cpu import KERNEL_CPL, SF_MASK, USER_CPL, Cpu
from sim.machine.profiles import Profile


class MachineHalted(Exception):
    """The simulated machine stopped (a kernel panic); the simulator itself is fine."""


class Machine:
    def __init__(self, profile: Profile, record_budget: int, event_budget: int) -> None:
        self.profile = profile
        self.log = EventLog(record_budget, event_budget)
        self.cpu = Cpu(self.log)
        self.now = 0
        self.user_ns = 0
        self.sys_ns = 0
        self.kernel_gsbase_msr = 0  # MSR_KERNELGSBASE: what swapgs exchanges %gs's base with
        self.lstar_address = 0  # MSR_LSTAR: where SYSCALL jumps; the kernel sets it at boot
        self.lstar_handler: Callable[[], None] | None = None

    def charge(self, ns: int) -> None:
        self.now += ns
        if self.cpu.regs["cpl"] == USER_CPL:
            self.user_ns += ns
        else:
            self.sys_ns += ns

    def emit(self, kind: str, name: str, detail: str = "") -> None:
        self.log.emit(self.now, kind, name, detail)

    def enter(self, function: str, detail: str = "") -> None:
        self.log.depth += 1
        self.log.emit(self.now, "enter", function, detail)

    def exit(self, function: str, detail: str = "") -> None:
        self.log.emit(self.now, "exit", function, detail)
        self.log.depth -= 1

    def syscall_instruction(self) -> None:
        """SYSCALL: return address to %rcx, rflags to %r11, mask rflags with IA32_FMASK, ring 0 at MSR_LSTAR."""
        cpu = self.cpu
        cpu.set("rcx", cpu["rip"] + 2)
        cpu.set("r11", cpu["rflags"])
        cpu.set("rflags", cpu["rflags"] & ~SF_MASK)
        cpu.set("cpl", KERNEL_CPL)
        cpu.set("rip", self.lstar_address)
        self.charge(self.profile.syscall_insn_ns)
        self.emit("insn", "syscall", "ring 3 -> ring 0 at MSR_LSTAR; %rcx = return address, %r11 = rflags")
        self.lstar_handler()
