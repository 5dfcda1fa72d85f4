"""VM start-up (sys/vm/vm_init.c, vm_page_startup, and amd64 pmap_bootstrap): the free-page pool, the paging
queues, and the kernel's own page tables, which every address space shares.

Physical memory below KERNEL_RESERVED holds the kernel image, its boot-time page tables and early allocations;
the rest is the free pool. The kernel pmap maps the kernel at KERNBASE with 2 MiB pages and all of physical
memory at DMAP_MIN_ADDRESS with 1 GiB pages, all global (G), so they survive every %cr3 switch.
"""

from __future__ import annotations

from sim.machine.mmu import PG_A, PG_G, PG_M, PG_NX, PG_PS, PG_RW, PG_V
from sim.machine.physmem import PAGE_SHIFT
from sim.vm.pmap import Pmap
from sim.vm.vm_meter import VmMeter
from sim.vm.vm_page import PQ_ACTIVE, PQ_INACTIVE, PQ_LAUNDRY, VmPage, VmPageQueue
from sim.vm.vm_param import DMPML4I, KERNBASE, KPML4BASE, KPML4I, PML4PML4I
from sim.vm.vm_phys import VmPhys
from sim.vm.vm_reserv import vm_reserv_break

KERNEL_RESERVED = 64 << 20  # the kernel image and boot allocations: not in the free pool
KPML4PHYS = 0x1C00000  # KPML4phys: the kernel pmap's PML4 (pmap_bootstrap's create_pagetables)
KERNEL_TEXT_SIZE = 64 << 20  # mapped at KERNBASE with 2 MiB pages
KERNEL_PAGE = PG_V | PG_RW | PG_A | PG_M | PG_G


class VmSystem:
    """The VM system's global state for one run: FreeBSD keeps these in vm_cnt, vm_page_array, the page queues
    and vm_phys's free lists."""

    def __init__(self, machine) -> None:
        physmem = machine.physmem
        self.cnt = VmMeter()
        self.page_array: dict[int, VmPage] = {}  # pfn -> vm_page, made when the frame is first handed out
        self.queues = {q: VmPageQueue(name) for q, name in ((PQ_INACTIVE, "inactive"), (PQ_ACTIVE, "active"),
                                                            (PQ_LAUNDRY, "laundry"))}  # fmt: skip
        self.phys = VmPhys(KERNEL_RESERVED >> PAGE_SHIFT, physmem.npages)
        self.reservs: dict[int, object] = {}  # first pfn -> reservation
        self.v_reserved_free = 0  # pages held in reservations but not yet allocated
        self.v_wire_count = 0
        self.next_object_id = 0
        self.next_vmspace_id = 0
        self.superpages_enabled = True  # vm.pmap.pg_ps_enabled
        self.final_page_tables: dict[int, object] = {}  # pid -> PageTables at exit, for `trapscope pagewalk`
        self.image_vnodes: dict[str, object] = {}  # path -> vnode of an image not in the file system (rtld)
        self.shared_page_obj = None  # the shared page's object, made with the first process
        self.oom_killed: set = set()  # processes vm_pageout_oom has killed: they may use the reserve
        self.fault_replays: dict[tuple, tuple[int, int, int]] = {}  # fast-forward (sim/kern/fastforward.py)
        # Paging thresholds as vm_pageout_init() sets them (FreeBSD 11)
        self.v_page_count = self.phys.page_count
        self.v_free_min = 4 + (self.v_page_count - 1024) // 200
        self.v_free_reserved = 16 + self.v_page_count // 768  # v_pageout_free_min + (v_page_count / 768)
        self.v_free_target = 4 * self.v_free_min + self.v_free_reserved
        self.v_inactive_target = self.v_free_target * 3 // 2
        self.kernel_pmap = Pmap()
        self.kernel_pmap.pm_name = "kernel_pmap"
        self.kernel_pmap.pm_pml4 = self.kernel_pmap.pm_cr3 = KPML4PHYS
        _create_pagetables(physmem)

    def free_count(self) -> int:
        """v_free_count: free pages, including those waiting in reservations."""
        return self.phys.free_count + self.v_reserved_free

    def reclaim_reservation(self) -> tuple[int, bool] | None:
        """Out of single pages and whole blocks: break the reservation with the most unused pages."""
        if not self.reservs:
            return None
        rv = min(self.reservs.values(), key=lambda r: (r.popcnt, r.pfn))
        vm_reserv_break(rv)
        return self.phys.alloc_page(False)


def _create_pagetables(physmem) -> None:
    """Boot-time kernel page tables (unrecorded: they exist before the run begins)."""
    next_table = [KPML4PHYS]

    def table() -> tuple[int, list[int]]:
        pa = next_table[0]
        next_table[0] += 1 << PAGE_SHIFT
        return pa, physmem.table(pa >> PAGE_SHIFT)

    pml4_pa, pml4 = table()
    pml4[PML4PML4I] = pml4_pa | PG_V | PG_RW | PG_A | PG_M | PG_NX
    # The kernel image at KERNBASE: PML4 511 -> PDPT 510 -> PD of 2 MiB pages at physical 0.
    kpdpt_pa, kpdpt = table()
    kpd_pa, kpd = table()
    pml4[KPML4I] = kpdpt_pa | PG_V | PG_RW | PG_A | PG_M
    kpdpt[(KERNBASE >> 30) & 0x1FF] = kpd_pa | PG_V | PG_RW | PG_A | PG_M
    for i in range(KERNEL_TEXT_SIZE >> 21):
        kpd[i] = (i << 21) | KERNEL_PAGE | PG_PS
    # The direct map: every physical GiB as a 1 GiB page, no execute.
    dmap_pa, dmap = table()
    pml4[DMPML4I] = dmap_pa | PG_V | PG_RW | PG_A | PG_M
    for i in range(-(-physmem.size // (1 << 30))):
        dmap[i] = (i << 30) | KERNEL_PAGE | PG_PS | PG_NX
    # The kernel map (kernel stacks, malloc): its top-level table, filled as the kernel allocates.
    kmap_pa, _ = table()
    pml4[KPML4BASE] = kmap_pa | PG_V | PG_RW | PG_A | PG_M


def vm_boot(machine, kernel) -> VmSystem:
    """Set up the VM system for a run and point the CPU at the kernel's page tables."""
    kernel.vm = VmSystem(machine)
    machine.cpu.regs["cr3"] = KPML4PHYS
    machine.mmu.loaded_cr3 = KPML4PHYS
    return kernel.vm
