"""Background page zeroing (sys/vm/vm_zeroidle.c, FreeBSD 11): the idle-priority "pagezero" kernel process.

When the CPU would otherwise halt, free pages are zeroed ahead of need and kept in the free pool marked PG_ZERO;
a later zero-fill fault, which asks for VM_ALLOC_ZERO, gets one and skips pmap_zero_page (counted in v_ozfod). The
zeroing is moved, not avoided: it costs the same per page, but in time nobody was waiting for. The kernel keeps
about half of the free pages zeroed, with hysteresis (ZIDLE_LO, ZIDLE_HI), and only with the sysctl
vm.idlezero_enable set (KernelConfig.idlezero). Here the idle thread does the pagezero process's work in the time
before its next callout, since at idle priority that is the only time the process runs.
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.machine.physmem import PAGE_SHIFT
from sim.vm.pmap import PHYS_TO_DMAP, pagezero
from sim.vm.vm_page import PAGE_FREE, PAGE_FREE_ZERO


def zidle_lo(free: int) -> int:
    return free * 2 // 3


def zidle_hi(free: int) -> int:
    return free * 4 // 5


def vm_page_zero_check(free: int, zeroed: int) -> bool:
    """Zero more pages? Up to ZIDLE_HI of the free pages (vm_page_zero_check, without the hysteresis state)."""
    return pcpu.kernel.config.idlezero and zeroed < zidle_hi(free)


@kfunc
def vm_page_zero_idle(until_ns: int) -> int:
    """Zero free pages, one at a time, while the CPU has nothing else to do before `until_ns`; how many."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    phys = vm.phys
    zeroed = 0
    while phys.free_dirty and machine.now < until_ns:  # the process yields between pages, not within one
        if not vm_page_zero_check(phys.free_count, phys.zero_count):
            break
        pfn = next(iter(phys.free_dirty))  # vm_phys_zero_pages_idle: the next page not yet zeroed
        del phys.free_dirty[pfn]
        pagezero(PHYS_TO_DMAP(pfn << PAGE_SHIFT))  # pmap_zero_page_idle
        phys.free_zero[pfn] = None  # back in the free pool, PG_ZERO
        if machine.log.recording:
            machine.log.delta(("page", pfn, PAGE_FREE, PAGE_FREE_ZERO))
        zeroed += 1
    return zeroed


def wants_idle_zeroing() -> bool:
    """The pagezero process would run now: enabled, and some free page is not yet zeroed."""
    vm = pcpu.kernel.vm
    return pcpu.kernel.config.idlezero and bool(vm.phys.free_dirty)
