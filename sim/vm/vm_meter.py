"""The VM system's statistics (sys/sys/vmmeter.h, struct vmmeter), kept whether or not the run is recording.

FreeBSD counts faults by what resolved them: v_vm_faults (every vm_fault call), v_zfod (zero-filled on demand),
v_ozfod (... from a page already known to be zero, PG_ZERO, so no pagezero), v_cow_faults (copy-on-write),
v_cow_optim (COW resolved by moving the page, not copying), v_io_faults (the pager read the page: a hard fault,
ru_majflt), v_intrans. The simulator also keeps, per privilege level the fault was taken at, a count by kind
(zero_fill, cow, soft, hard, protection, unmapped) for `trapscope run --json`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sim.vm.vm_param import FAULT_KINDS

# The vminfo provider's probes (Solaris's names) that each kind of fault fires, beside the counters they shadow.
VMINFO_BY_FAULT = {"zero_fill": ("zfod",), "cow": ("cow_fault",), "hard": ("maj_fault",),
                   "protection": ("prot_fault",)}  # fmt: skip


def vminfo_probes(kind: str, kernel_mode: bool) -> tuple[str, ...]:
    """The vminfo probes a resolved (or failed) page fault of this kind fires, in the order they fire (the D side,
    sim/trace/providers.py, fires the same ones)."""
    return ("as_fault", *VMINFO_BY_FAULT.get(kind, ()), *(("kernel_asflt",) if kernel_mode else ()))


@dataclass
class VmMeter:
    v_trap: int = 0  # traps taken (trap() entered), all kinds
    v_vm_faults: int = 0
    v_io_faults: int = 0
    v_cow_faults: int = 0
    v_cow_optim: int = 0
    v_zfod: int = 0
    v_ozfod: int = 0
    v_intrans: int = 0
    v_reactivated: int = 0
    v_pdwakeups: int = 0  # times the page daemon was woken
    v_pdpages: int = 0  # pages it examined
    v_tfree: int = 0  # pages freed
    v_dfree: int = 0  # pages freed by the page daemon
    v_swapout: int = 0
    v_swappgsout: int = 0
    v_swapin: int = 0
    v_swappgsin: int = 0
    v_vnodein: int = 0
    v_vnodepgsin: int = 0
    v_pagezero: int = 0  # pagezero() calls, including page-table pages (not a FreeBSD counter)
    v_pagecopy: int = 0  # pmap_copy_page() calls (not a FreeBSD counter)
    pde_promotions: int = 0  # vm.pmap.pde.promotions
    pde_demotions: int = 0  # vm.pmap.pde.demotions
    pde_mappings: int = 0  # vm.pmap.pde.mappings: 2 MiB pages mapped directly
    # page faults by kind, split by the mode the fault was taken in
    faults_user: Counter = field(default_factory=Counter)
    faults_kernel: Counter = field(default_factory=Counter)
    fault_usermode: bool = False  # the mode of the fault being handled now (set by trap_pfault)

    def count_fault(self, kind: str) -> None:
        (self.faults_user if self.fault_usermode else self.faults_kernel)[kind] += 1

    def faults(self) -> dict[str, int]:
        """Faults by kind, both modes together, every kind present."""
        return {kind: self.faults_user[kind] + self.faults_kernel[kind] for kind in FAULT_KINDS}

    def summary(self) -> dict:
        """What `trapscope run --json` reports."""
        return {
            "faults": self.faults(),
            "faults_user_mode": sum(self.faults_user.values()),
            "faults_kernel_mode": sum(self.faults_kernel.values()),
            "faults_by_mode": {
                "user": {kind: self.faults_user[kind] for kind in FAULT_KINDS},
                "kernel": {kind: self.faults_kernel[kind] for kind in FAULT_KINDS},
            },
            "vmmeter": {
                name: getattr(self, name)
                for name in (
                    "v_trap",
                    "v_vm_faults",
                    "v_zfod",
                    "v_ozfod",
                    "v_cow_faults",
                    "v_cow_optim",
                    "v_io_faults",
                    "v_pdwakeups",
                    "v_pdpages",
                    "v_swappgsout",
                    "v_swappgsin",
                    "v_pagezero",
                    "v_pagecopy",
                    "pde_promotions",
                    "pde_demotions",
                )
            },
        }
