"""The vminfo provider is Solaris's, not FreeBSD's: the trace page says so when a program uses it, and shows
FreeBSD's own route to the same facts, the VM system's counters as `sysctl vm.stats.vm` reads them (struct
vmmeter, sys/vm/vm_meter.c) and fbt's probes on the fault path (`fbt::vm_fault:entry`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.run import Run

_USES_VMINFO = re.compile(r"(^|[^\w$])vminfo\s*:")

# The counters of struct vmmeter the fault path keeps, as `sysctl vm.stats.vm.NAME` names them, with what each counts.
VM_STATS = (
    ("v_vm_faults", "calls to vm_fault(): every page fault the VM system resolved or refused"),
    ("v_zfod", "pages zero-filled on demand (Solaris's vminfo:::zfod)"),
    ("v_ozfod", "... of them from a page already known to be zero (PG_ZERO): no pagezero"),
    ("v_cow_faults", "copy-on-write faults (vminfo:::cow_fault)"),
    ("v_cow_optim", "... resolved by moving the page rather than copying it"),
    ("v_io_faults", "faults the pager had to read in (vminfo:::maj_fault)"),
    ("v_trap", "traps taken, page faults among them"),
)


@dataclass(frozen=True)
class VmStat:
    sysctl: str
    value: int
    meaning: str


def uses_vminfo(script: str) -> bool:
    return bool(_USES_VMINFO.search(script))


def vm_stats(run: Run) -> list[VmStat]:
    """What `sysctl vm.stats.vm` would report the run added to each counter (the machine started at zero)."""
    counters = run.vm.get("vmmeter", {})
    return [VmStat(f"vm.stats.vm.{name}", counters.get(name, 0), meaning) for name, meaning in VM_STATS]
