"""The page daemon (sys/vm/vm_pageout.c, FreeBSD 11): keeps the free-page pool from running dry.

When an allocation finds fewer than v_free_reserved free pages, the faulting thread waits in VM_WAIT
("vmwait") while the page daemon works towards v_free_target:
  1. it scans the inactive queue, oldest first: a page referenced since it was queued (an A bit in one of its
     PTEs) goes back to the active queue; a clean page is unmapped and freed; a dirty anonymous page is
     written to swap (its object becomes OBJT_SWAP) and then freed (the laundry);
  2. it ages the active queue, moving pages not referenced lately to the inactive queue, so the next pass
     has candidates.
If passes free nothing, memory is exhausted and, as vm_pageout_oom() does, the biggest process is killed.

Simplification: the daemon runs on the faulting thread's stack and its CPU time is billed there, rather than
to a kernel process of its own; its disk writes pass as wall-clock time.
"""

from __future__ import annotations

from sim.core.events import PageoutScan, VmWait
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.machine.machine import MachineHalted
from sim.vm.pmap import pmap_remove_all, pmap_ts_referenced
from sim.vm.vm_page import (
    ACT_MAX,
    PGA_REFERENCED,
    PQ_ACTIVE,
    PQ_INACTIVE,
    vm_page_activate,
    vm_page_deactivate,
    vm_page_free,
)
from sim.vm.vm_pager import swap_pager_putpages

MAX_PASSES = 64  # passes without reaching the reserve before the OOM killer acts
ACT_ADVANCE = 3  # act_count gained by a page found referenced
ACT_DECLINE = 1  # ... lost by one not referenced


def vm_wait() -> None:
    """VM_WAIT: wake the page daemon and sleep until it has freed pages (here: run it)."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    machine.emit("proc", "vmwait", VmWait(vm.free_count()))
    for _ in range(MAX_PASSES):
        vm_pageout_scan()
        if vm.free_count() > vm.v_free_reserved:
            return
    vm_pageout_oom()


@kfunc
def vm_pageout_scan() -> int:
    """One pass over the inactive queue, then the active queue; returns the pages freed."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    cnt = vm.cnt
    cnt.v_pdwakeups += 1
    shortage = vm.v_free_target - vm.free_count()
    freed = 0
    for m in list(vm.queues[PQ_INACTIVE].pages):
        if freed >= shortage:
            break
        cnt.v_pdpages += 1
        machine.charge(machine.profile.pageout_page_ns)
        if m.queue != PQ_INACTIVE or m.wire_count:
            continue
        referenced = m.aflags & PGA_REFERENCED or (m.pv and pmap_ts_referenced(m))
        m.aflags &= ~PGA_REFERENCED
        if referenced:
            vm_page_activate(m)  # used since it was queued: keep it
            continue
        if m.pv:
            pmap_remove_all(m)  # also collects the hardware's dirty bits
        object = m.object
        if m.dirty:
            if object is None or not object.anonymous:
                vm_page_activate(m)  # a dirty file page would need the file written back: not modelled
                continue
            swap_pager_putpages(object, m)  # the laundry: write it out, then the frame can go
        vm_page_free(m)
        cnt.v_dfree += 1
        freed += 1
    # Age the active queue so the next pass finds inactive pages.
    active = vm.queues[PQ_ACTIVE]
    inactive = vm.queues[PQ_INACTIVE]
    for m in list(active.pages):
        if len(inactive) >= vm.v_inactive_target:
            break
        cnt.v_pdpages += 1
        machine.charge(machine.profile.pageout_page_ns)
        act_delta = (pmap_ts_referenced(m) if m.pv else 0) + (1 if m.aflags & PGA_REFERENCED else 0)
        m.aflags &= ~PGA_REFERENCED
        if act_delta:
            m.act_count = min(ACT_MAX, m.act_count + ACT_ADVANCE + act_delta)
        else:
            m.act_count -= min(m.act_count, ACT_DECLINE)
            if m.act_count == 0:
                vm_page_deactivate(m)
    machine.emit("mem", "pagedaemon", PageoutScan(freed, vm.free_count(), vm.v_free_target))
    return freed


@kfunc
def vm_pageout_oom() -> None:
    """Out of memory and swap: kill the process using the most memory."""
    kernel = pcpu.kernel
    candidates = [p for p in kernel.procs if p.p_vmspace is not None]
    if not candidates:
        raise MachineHalted("out of memory with no process to kill")
    bigproc = max(candidates, key=lambda p: (p.p_vmspace.vm_pmap.pm_resident, -p.p_pid))
    if bigproc in kernel.vm.oom_killed:
        raise MachineHalted("out of memory: the killed process could not give its memory back")
    kernel.vm.oom_killed.add(bigproc)
    uid = bigproc.p_ucred.cr_uid if bigproc.p_ucred else 0
    kernel.console.append(f"pid {bigproc.p_pid} ({bigproc.p_comm}), uid {uid}, was killed: out of swap space\n")
    kernel.killproc(bigproc)
