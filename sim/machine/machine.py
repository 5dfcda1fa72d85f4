"""The simulated machine: one CPU, the event log, and simulated time.

Time is integer nanoseconds. Every cost is charged through `charge`. Time is billed to user or system by the
privilege level it was spent at: each change of CPL closes a stretch of time in one ring, as exact as a
statclock that never misses.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core.log import EventLog
from sim.machine.cpu import KERNEL_CPL, SF_MASK, USER_CPL, Cpu, register_step
from sim.machine.host_backing import HostBacking
from sim.machine.memhier import MemoryHierarchy
from sim.machine.mmu import Mmu
from sim.machine.physmem import PhysMem
from sim.machine.profiles import Profile

# What SYSCALL writes, in its order: return address, saved rflags, masked rflags, ring 0, MSR_LSTAR.
_syscall_step = register_step("insn", "rcx", "r11", "rflags", "cpl", "rip")


class MachineHalted(Exception):
    """The simulated machine stopped (a kernel panic); the simulator itself is fine."""


class Machine:
    def __init__(self, profile: Profile, record_budget: int, event_budget: int) -> None:
        self.profile = profile
        self.log = EventLog(record_budget, event_budget)
        self.cpu = Cpu(self.log, self._cpl_changed)
        self.emit = self.log.emit  # emit(kind, name, data): an event at the current simulated time
        self._ring_since = 0  # when the CPU last changed privilege level
        self._closed_ns = {USER_CPL: 0, KERNEL_CPL: 0}  # time in each ring before _ring_since
        self.kernel_gsbase_msr = 0  # MSR_KERNELGSBASE: what swapgs exchanges %gs's base with
        self.lstar_address = 0  # MSR_LSTAR: where SYSCALL jumps; the kernel sets it at boot
        self.lstar_handler: Callable[[], None] | None = None
        self.sf_mask = SF_MASK  # MSR_SF_MASK (IA32_FMASK): the rflags bits SYSCALL clears; the kernel sets it at boot
        # Runs the user code at an address, as the CPU fetches it in ring 3 (sim/user/uexec.py's user_jump, set at
        # boot like lstar_handler): the kernel reaches user code only through it, as the layers point downwards.
        self.user_jump: Callable[[int], None] | None = None
        self.physmem = PhysMem(profile.phys_mem_bytes)  # sparse: only touched frames cost the host
        self.mmu = Mmu(self, self.physmem, profile.tlb_entries, profile.tlb_large_entries)
        self.caches = MemoryHierarchy(profile.memory)  # what a byte costs to move depends on where it is
        self.host = HostBacking(self.physmem.npages, profile.host_first_touch_ns)

    @property
    def now(self) -> int:
        return self.log.now

    def charge(self, ns: int) -> None:
        self.log.now += ns

    def _cpl_changed(self, old: int) -> None:
        self._closed_ns[old] += self.log.now - self._ring_since
        self._ring_since = self.log.now

    def idle(self, ns: int) -> None:
        """The CPU halts in the idle thread for `ns`: wall time passes, billed to neither user nor system."""
        self._cpl_changed(self.cpu.regs["cpl"])
        self.log.now += ns
        self._ring_since = self.log.now

    def close(self) -> None:
        """Drop the machine's back references (its Cpu's ring callback, its Mmu's machine): they make it a cycle, so
        without this a finished machine, and all it holds, waits for the cyclic collector instead of being freed
        by reference counting when its run lets go of it."""
        self.cpu._cpl_changed = None
        self.mmu.machine = None

    def _ring_ns(self, cpl: int) -> int:
        open_stretch = self.log.now - self._ring_since if self.cpu.regs["cpl"] == cpl else 0
        return self._closed_ns[cpl] + open_stretch

    @property
    def user_ns(self) -> int:
        return self._ring_ns(USER_CPL)

    @property
    def sys_ns(self) -> int:
        return self._ring_ns(KERNEL_CPL)

    def enter(self, function: str, data: object = None) -> None:
        self.log.depth += 1
        self.log.emit("enter", function, data)

    def exit(self, function: str, data: object = None) -> None:
        self.log.emit("exit", function, data)
        self.log.depth -= 1

    def syscall_instruction(self) -> None:
        """SYSCALL: return address to %rcx, rflags to %r11, mask rflags with IA32_FMASK, ring 0 at MSR_LSTAR."""
        cpu = self.cpu
        regs = cpu.regs
        rflags = regs["rflags"]
        # The step bills the instruction's time after the switch to ring 0: SYSCALL is system time.
        _syscall_step(self, self.profile.syscall_insn_ns, "syscall", None, regs["rip"] + 2, rflags,
                      rflags & ~self.sf_mask, KERNEL_CPL, self.lstar_address)  # fmt: skip
        self.lstar_handler()
