"""The machine-dependent half of the VM system (sys/amd64/amd64/pmap.c, FreeBSD 11): page tables.

The machine-independent layer (vm_map, vm_object, vm_fault) decides *what* should be mapped; the pmap makes the
hardware see it by writing page-table entries in physical memory, and keeps the TLB honest: any change that
removes or reduces a translation the TLB may hold (one whose accessed bit is set) is followed by an invlpg, or
by a %cr3 reload when many pages change at once. Adding permissions needs no invalidation: a stale, stricter
entry only costs a spurious fault.

Page-table pages come from the free pool like any page (VM_ALLOC_NOOBJ | VM_ALLOC_WIRED | VM_ALLOC_ZERO) and are
zeroed with pmap_zero_page unless they were already zero. A page-table page's wire_count is the number of valid
entries it holds; when it drops to zero the page is freed, all zero (PG_ZERO), back to the pool.

Superpages: when the 512 PTEs under one PDE map a fully populated reservation alike, pmap_promote_pde() replaces
them with one 2 MiB PDE (the PT page is kept aside for a later demotion); any change to part of the range first
demotes it (pmap_demote_pde).

Every PTE written is one "mem" event with a ("pte", entry_pa, old, new) delta.
"""

from __future__ import annotations

from sim.core.events import Cr3Load, NewPml4, PageCopied, PageZeroed, PteStore, Superpage
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.machine.fastforward import count_unrecorded
from sim.machine.mmu import (
    LEVEL_NAMES,
    PG_A,
    PG_FRAME,
    PG_G,
    PG_M,
    PG_MANAGED,
    PG_NX,
    PG_PS,
    PG_PS_FRAME,
    PG_RW,
    PG_U,
    PG_V,
    PG_W,
)
from sim.machine.physmem import FRAME_ZERO, NPTEPG, PAGE_SHIFT, PAGE_SIZE, frame_contents
from sim.vm.vm_page import (
    PG_FICTITIOUS,
    PG_ZERO,
    PGA_WRITEABLE,
    PHYS_TO_VM_PAGE,
    VM_ALLOC_NOOBJ,
    VM_ALLOC_SYSTEM,
    VM_ALLOC_WIRED,
    VM_ALLOC_ZERO,
    VPO_UNMANAGED,
    vm_page_alloc,
    vm_page_free_zero,
)
from sim.vm.vm_param import (
    DMAP_TO_PHYS,
    NBPDR,
    PDRMASK,
    PHYS_TO_DMAP,
    VM_MAXUSER_ADDRESS,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)

PMAP_ENTER_WIRED = 0x0100  # pmap_enter's flags: besides the access type (VM_PROT_*)
PG_PTE_PROMOTE = PG_NX | PG_MANAGED | PG_W | PG_G | PG_M | PG_A | PG_U | PG_RW | PG_V  # must agree to promote
PTP_BITS = PG_V | PG_RW | PG_U | PG_A | PG_M  # a user page-table page's entry in its parent: no restriction there


class Pmap:
    """struct pmap: one address space's page tables."""

    __slots__ = ("pm_pml4", "pm_cr3", "pm_resident", "pm_wired", "pm_saved_pt", "pm_name", "pm_map")

    def __init__(self) -> None:
        self.pm_pml4 = 0  # physical address of the PML4 page
        self.pm_cr3 = 0
        self.pm_resident = 0  # pm_stats.resident_count: pages mapped (4 KiB units)
        self.pm_wired = 0
        self.pm_saved_pt: dict[int, object] = {}  # va >> 21 -> PT page kept under a promoted 2 MiB mapping
        self.pm_name = ""
        self.pm_map = None  # the vm_map this pmap backs (None for the kernel pmap)

    def __repr__(self) -> str:
        return f"pmap {self.pm_name or hex(self.pm_cr3)}"


def _physmem():
    return pcpu.machine.physmem


def _pte_store(
    table: list[int], index: int, table_pa: int, level: int, new: int, why: str, va: int, pa: int = 0
) -> None:
    """Write one page-table entry: a ("pte", ...) delta and a "mem" event saying why (PteStore.why), for which
    virtual address (and physical address, when the store maps one)."""
    old = table[index]
    table[index] = new
    log = pcpu.machine.log
    if log.recording:
        entry_pa = table_pa + (index << 3)
        log.delta(("pte", entry_pa, old, new))
        log.emit("mem", LEVEL_NAMES[level], PteStore(why, va, pa, level, index, entry_pa, old, new))
    else:
        log.emit("mem", LEVEL_NAMES[level])  # counted: one event per entry written


def pmap_is_current(pmap: Pmap) -> bool:
    """Is this pmap loaded in %cr3, so the TLB may hold its translations?"""
    kernel = pcpu.kernel.vm.kernel_pmap
    return pmap is kernel or pcpu.machine.cpu.regs["cr3"] == pmap.pm_cr3


def pmap_invalidate_page(pmap: Pmap, va: int) -> None:
    if pmap_is_current(pmap):
        pcpu.machine.mmu.invlpg(va)


def pmap_invalidate_all(pmap: Pmap) -> None:
    if pmap_is_current(pmap):
        machine = pcpu.machine
        machine.charge(machine.profile.tlb_flush_ns)
        machine.mmu.invltlb()


# -- finding entries --------------------------------------------------------------------------------------------


def _slot(pmap: Pmap, va: int, depth: int) -> tuple[list[int], int, int] | None:
    """The (table, index, table_pa) of va's entry at level `depth` (0 PML4 .. 3 PT), if the tables above exist.

    Stops early at a 2 MiB PDE: asking for the PTE of a va under a superpage gives None.
    """
    physmem = _physmem()
    table_pa = pmap.pm_pml4
    for level in range(depth + 1):
        table = physmem.table(table_pa >> PAGE_SHIFT)
        index = (va >> (39 - 9 * level)) & 0x1FF
        if level == depth:
            return table, index, table_pa
        entry = table[index]
        if not entry & PG_V or (level == 2 and entry & PG_PS):
            return None
        table_pa = entry & PG_FRAME
    return None


def pmap_pde(pmap: Pmap, va: int) -> tuple[list[int], int, int] | None:
    return _slot(pmap, va, 2)


def pmap_pte(pmap: Pmap, va: int) -> tuple[list[int], int, int] | None:
    return _slot(pmap, va, 3)


def pmap_extract(pmap: Pmap, va: int) -> int:
    """The physical address va maps to in this pmap, or 0 (a software walk: no TLB, no A bits)."""
    pde = pmap_pde(pmap, va)
    if pde is None:
        return 0
    table, index, _ = pde
    entry = table[index]
    if not entry & PG_V:
        return 0
    if entry & PG_PS:
        return (entry & PG_PS_FRAME) | (va & PDRMASK)
    pte = _physmem().table((entry & PG_FRAME) >> PAGE_SHIFT)[(va >> 12) & 0x1FF]
    return (pte & PG_FRAME) | (va & (PAGE_SIZE - 1)) if pte & PG_V else 0


def pmap_mapping(pmap: Pmap, va: int) -> int:
    """The leaf entry mapping va (a PTE, or a PDE with PS set), 0 if none."""
    pde = pmap_pde(pmap, va)
    if pde is None:
        return 0
    table, index, _ = pde
    entry = table[index]
    if not entry & PG_V or entry & PG_PS:
        return entry
    return _physmem().table((entry & PG_FRAME) >> PAGE_SHIFT)[(va >> 12) & 0x1FF]


# -- page-table pages ------------------------------------------------------------------------------------------


def _alloc_ptp(why: str):
    """A zeroed, wired page for a page table (the caller retries after the page daemon if memory is short)."""
    req = VM_ALLOC_NOOBJ | VM_ALLOC_SYSTEM | VM_ALLOC_WIRED | VM_ALLOC_ZERO
    m = vm_page_alloc(None, 0, req)
    if m is None:
        from sim.vm.vm_pageout import vm_wait

        vm_wait()  # VM_WAIT, then try again
        m = vm_page_alloc(None, 0, req)
        if m is None:
            from sim.machine.machine import MachineHalted

            raise MachineHalted("out of memory for page tables")
    if not m.flags & PG_ZERO:
        pmap_zero_page(m)
    else:
        m.flags &= ~PG_ZERO
    _physmem().table(m.pfn)  # it holds entries from now on
    return m


def _pmap_allocpte(pmap: Pmap, va: int) -> tuple[list[int], int, int, object]:
    """The PT slot for user va, allocating the PDPT, PD and PT pages on the way down as needed.

    The PT page's wire_count is raised for the entry the caller is about to make valid.
    """
    physmem = _physmem()
    table_pa = pmap.pm_pml4
    for level in range(3):
        table = physmem.table(table_pa >> PAGE_SHIFT)
        index = (va >> (39 - 9 * level)) & 0x1FF
        entry = table[index]
        if entry & PG_V:
            if level == 2 and entry & PG_PS:
                pmap_demote_pde(pmap, va)
                entry = table[index]
            table_pa = entry & PG_FRAME
            continue
        m = _alloc_ptp(LEVEL_NAMES[level + 1])
        if level > 0:
            PHYS_TO_VM_PAGE(table_pa).wire_count += 1
        m.wire_count = 0
        _pte_store(table, index, table_pa, level, m.phys_addr | PTP_BITS, "new table", va)
        table_pa = m.phys_addr
    ptp = PHYS_TO_VM_PAGE(table_pa)
    ptp.wire_count += 1
    return physmem.table(table_pa >> PAGE_SHIFT), (va >> 12) & 0x1FF, table_pa, ptp


def _unwire_ptp(pmap: Pmap, va: int, ptp) -> None:
    """One entry fewer in this page-table page (a PT): free it, and clear its parent's entry, when it is empty."""
    _unwire_upper(pmap, va, ptp, 3)
    # The TLB's paging-structure caches may hold the freed tables: flush them (FreeBSD: pmap_invalidate_page).


# -- entering mappings ----------------------------------------------------------------------------------------------


def _pte_bits(prot: int, va: int, wired: bool, managed: bool) -> int:
    bits = PG_V | PG_A
    if prot & VM_PROT_WRITE:
        bits |= PG_RW
    if not prot & VM_PROT_EXECUTE:
        bits |= PG_NX
    if va < VM_MAXUSER_ADDRESS:
        bits |= PG_U
    if wired:
        bits |= PG_W
    if managed:
        bits |= PG_MANAGED
    return bits


@kfunc
def pmap_enter(pmap: Pmap, va: int, m, prot: int, flags: int, psind: int = 0) -> int:
    """Map page m at va with protection prot; flags carries the access that caused it (VM_PROT_WRITE sets D)."""
    machine = pcpu.machine
    machine.charge(machine.profile.pmap_enter_ns)
    pa = m.phys_addr
    managed = not (m.oflags & VPO_UNMANAGED or m.flags & PG_FICTITIOUS)
    newpte = pa | _pte_bits(prot, va, bool(flags & PMAP_ENTER_WIRED), managed)
    if flags & VM_PROT_WRITE:
        newpte |= PG_M
    table, index, table_pa, ptp = _pmap_allocpte(pmap, va)
    origpte = table[index]
    invalidate = False
    if origpte & PG_V:
        ptp.wire_count -= 1  # the entry was already counted
        if (origpte & PG_FRAME) == pa:
            if origpte & PG_M and newpte & PG_RW:
                newpte |= PG_M
            if origpte & PG_A and (origpte & PG_RW and not newpte & PG_RW or newpte & PG_NX and not origpte & PG_NX):
                invalidate = True
        else:
            _pv_remove(origpte, pmap, va)
            invalidate = bool(origpte & PG_A)
        if origpte & PG_W:
            pmap.pm_wired -= 1
    else:
        pmap.pm_resident += 1
        if managed:
            m.pv.append((pmap, va))
    if (origpte & PG_FRAME) != pa and origpte & PG_V and managed:
        m.pv.append((pmap, va))
    if newpte & PG_W:
        pmap.pm_wired += 1
    if newpte & PG_RW and managed:
        m.aflags |= PGA_WRITEABLE
    _pte_store(table, index, table_pa, 3, newpte, "pmap_enter", va & ~(PAGE_SIZE - 1), pa)
    if invalidate:
        pmap_invalidate_page(pmap, va)
    if (
        psind == 0
        and ptp.wire_count == NPTEPG
        and managed
        and m.reserv is not None
        and m.reserv.popcnt == NPTEPG
        and pcpu.kernel.vm.superpages_enabled
    ):
        pmap_promote_pde(pmap, va)
    return 0


@kfunc
def pmap_enter_quick(pmap: Pmap, va: int, m, prot: int) -> None:
    """Map m read-only at va if nothing is mapped there (vm_fault_prefault's neighbours)."""
    machine = pcpu.machine
    pde = pmap_pde(pmap, va)
    if pde is not None and pde[0][pde[1]] & PG_PS:
        return
    pte = pmap_pte(pmap, va)
    if pte is not None and pte[0][pte[1]] & PG_V:
        return
    machine.charge(machine.profile.pmap_enter_ns)
    managed = not (m.oflags & VPO_UNMANAGED or m.flags & PG_FICTITIOUS)
    table, index, table_pa, ptp = _pmap_allocpte(pmap, va)
    newpte = m.phys_addr | _pte_bits(prot & ~VM_PROT_WRITE, va, False, managed)
    pmap.pm_resident += 1
    if managed:
        m.pv.append((pmap, va))
    _pte_store(table, index, table_pa, 3, newpte, "prefault", va, m.phys_addr)


def _pv_remove(pte: int, pmap: Pmap, va: int) -> None:
    if not pte & PG_MANAGED:
        return

    m = PHYS_TO_VM_PAGE(pte & PG_FRAME)
    m.pv.remove((pmap, va & ~(PAGE_SIZE - 1)))
    if pte & PG_M:
        m.dirty = 0xFF  # vm_page_dirty: the hardware saw a write


# -- removing and protecting ----------------------------------------------------------------------------------------


@kfunc
def pmap_remove(pmap: Pmap, sva: int, eva: int) -> None:
    """Remove every mapping in [sva, eva); one page invalidates one entry, a range reloads %cr3 (FreeBSD 11)."""
    machine = pcpu.machine
    costs = machine.profile
    anyvalid = False
    va = sva
    while va < eva:
        pde = pmap_pde(pmap, va)
        next_pd = (va + NBPDR) & ~PDRMASK
        if pde is None:
            # No page table here: skip to the next PD (or further, but this is simple and exact).
            va = next_pd
            continue
        table, index, table_pa = pde
        entry = table[index]
        if not entry & PG_V:
            va = next_pd
            continue
        if entry & PG_PS:
            if va == (va & ~PDRMASK) and next_pd <= eva:
                _remove_pde(pmap, va, table, index, table_pa)
                anyvalid = True
                va = next_pd
                continue
            pmap_demote_pde(pmap, va)
        pt_pa = table[index] & PG_FRAME
        pt = _physmem().table(pt_pa >> PAGE_SHIFT)
        end = min(eva, next_pd)

        ptp = PHYS_TO_VM_PAGE(pt_pa)
        while va < end:
            i = (va >> 12) & 0x1FF
            pte = pt[i]
            if pte & PG_V:
                machine.charge(costs.pte_update_ns)
                _pte_store(pt, i, pt_pa, 3, 0, "pmap_remove", va)
                if pte & PG_W:
                    pmap.pm_wired -= 1
                pmap.pm_resident -= 1
                _pv_remove(pte, pmap, va)
                if sva + PAGE_SIZE == eva:
                    pmap_invalidate_page(pmap, va)
                else:
                    anyvalid = True
                _unwire_ptp(pmap, va, ptp)
                if ptp.wire_count == 0:
                    va = end
                    break
            va += PAGE_SIZE
        va = max(va, end)
    if anyvalid:
        pmap_invalidate_all(pmap)


def _remove_pde(pmap: Pmap, va: int, table: list[int], index: int, table_pa: int) -> None:
    machine = pcpu.machine
    pde = table[index]
    machine.charge(machine.profile.pte_update_ns)
    _pte_store(table, index, table_pa, 2, 0, "pmap_remove 2M", va)
    pmap.pm_resident -= NPTEPG
    if pde & PG_MANAGED:
        base = (pde & PG_PS_FRAME) >> PAGE_SHIFT
        page_array = pcpu.kernel.vm.page_array
        dirty = pde & PG_M
        for i in range(NPTEPG):
            m = page_array[base + i]
            m.pv.remove((pmap, va + i * PAGE_SIZE))
            if dirty:
                m.dirty = 0xFF
    saved = pmap.pm_saved_pt.pop(va >> 21, None)
    if saved is not None:
        saved.wire_count = 0
        pcpu.kernel.vm.v_wire_count -= 1
        _physmem().zero_frame(saved.pfn)
        vm_page_free_zero(saved)
    pd = PHYS_TO_VM_PAGE(table_pa)
    # The PD loses an entry: the same bookkeeping as a PT page losing one.
    pd.wire_count -= 1
    if pd.wire_count == 0:
        pd.wire_count = 1
        _unwire_upper(pmap, va, pd, 2)


def _unwire_upper(pmap: Pmap, va: int, ptp, level: int) -> None:
    """One entry fewer in this page-table page at `level` (3 PT, 2 PD, 1 PDPT): while a page is left empty, free it
    and clear its entry in the table above (_pmap_unwire_ptp)."""
    ptp.wire_count -= 1
    while ptp.wire_count == 0 and level > 0:
        table, index, table_pa = _slot(pmap, va, level - 1)
        _pte_store(table, index, table_pa, level - 1, 0, "free table", va)
        pcpu.kernel.vm.v_wire_count -= 1
        _physmem().zero_frame(ptp.pfn)
        vm_page_free_zero(ptp)
        level -= 1
        if level == 0:
            break
        ptp = PHYS_TO_VM_PAGE(table_pa)
        ptp.wire_count -= 1


@kfunc
def pmap_protect(pmap: Pmap, sva: int, eva: int, prot: int) -> None:
    """Reduce the permissions of the mappings in [sva, eva) to prot (increases happen lazily, by faults)."""
    if not prot & VM_PROT_READ:
        pmap_remove(pmap, sva, eva)
        return
    if prot & VM_PROT_WRITE and prot & VM_PROT_EXECUTE:
        return
    machine = pcpu.machine
    costs = machine.profile
    anychanged = False
    va = sva
    while va < eva:
        next_pd = (va + NBPDR) & ~PDRMASK
        pde = pmap_pde(pmap, va)
        if pde is None or not pde[0][pde[1]] & PG_V:
            va = next_pd
            continue
        table, index, table_pa = pde
        if table[index] & PG_PS:
            if va == (va & ~PDRMASK) and next_pd <= eva:
                old = table[index]
                new = _reduced(old, prot)
                if new != old:
                    machine.charge(costs.pte_update_ns)
                    _pte_store(table, index, table_pa, 2, new, "pmap_protect 2M", va)
                    _note_dirty_range(old, new, va)
                    anychanged = True
                va = next_pd
                continue
            pmap_demote_pde(pmap, va)
        pt_pa = table[index] & PG_FRAME
        pt = _physmem().table(pt_pa >> PAGE_SHIFT)
        end = min(eva, next_pd)
        while va < end:
            i = (va >> 12) & 0x1FF
            old = pt[i]
            if old & PG_V:
                new = _reduced(old, prot)
                if new != old:
                    machine.charge(costs.pte_update_ns)
                    _pte_store(pt, i, pt_pa, 3, new, "pmap_protect", va)
                    if old & PG_M and not new & PG_M and old & PG_MANAGED:
                        PHYS_TO_VM_PAGE(old & PG_FRAME).dirty = 0xFF
                    if old & PG_A:
                        anychanged = True
            va += PAGE_SIZE
    if anychanged:
        pmap_invalidate_all(pmap)


def _reduced(entry: int, prot: int) -> int:
    new = entry
    if not prot & VM_PROT_WRITE:
        new &= ~(PG_RW | PG_M)
    if not prot & VM_PROT_EXECUTE:
        new |= PG_NX
    return new


def _note_dirty_range(old: int, new: int, va: int) -> None:
    if old & PG_M and not new & PG_M and old & PG_MANAGED:
        base = old & PG_PS_FRAME
        for i in range(NPTEPG):
            PHYS_TO_VM_PAGE(base + i * PAGE_SIZE).dirty = 0xFF


@kfunc
def pmap_remove_all(m) -> None:
    """Remove every mapping of page m, in every pmap (through its pv list)."""
    machine = pcpu.machine
    for pmap, va in list(m.pv):
        pde = pmap_pde(pmap, va)
        if pde is not None and pde[0][pde[1]] & PG_PS:
            pmap_demote_pde(pmap, va)
        table, index, table_pa = pmap_pte(pmap, va)
        pte = table[index]
        machine.charge(machine.profile.pte_update_ns)
        _pte_store(table, index, table_pa, 3, 0, "pmap_remove_all", va, m.phys_addr)
        pmap.pm_resident -= 1
        if pte & PG_W:
            pmap.pm_wired -= 1
        if pte & PG_M:
            m.dirty = 0xFF
        m.pv.remove((pmap, va))
        if pte & PG_A:
            pmap_invalidate_page(pmap, va)

        _unwire_ptp(pmap, va, PHYS_TO_VM_PAGE(table_pa))
    m.aflags &= ~0x02  # PGA_WRITEABLE


def pmap_ts_referenced(m) -> int:
    """How many mappings of m the hardware marked accessed since the last look; clears those A bits."""
    count = 0
    for pmap, va in m.pv:
        pde = pmap_pde(pmap, va)
        if pde is not None and pde[0][pde[1]] & PG_PS:
            table, index, table_pa = pde
            if table[index] & PG_A:
                count += 1
            continue
        table, index, table_pa = pmap_pte(pmap, va)
        pte = table[index]
        if pte & PG_A:
            count += 1
            _pte_store(table, index, table_pa, 3, pte & ~PG_A, "clear A", va)
            pmap_invalidate_page(pmap, va)
    return count


# -- superpages ------------------------------------------------------------------------------------------------------


@kfunc
def pmap_promote_pde(pmap: Pmap, va: int) -> bool:
    """Replace 512 PTEs mapping 2 MiB of contiguous, aligned frames alike with one PDE (PS set)."""
    machine, vm = pcpu.machine, pcpu.kernel.vm

    table, index, table_pa = pmap_pde(pmap, va)
    pt_pa = table[index] & PG_FRAME
    pt = _physmem().table(pt_pa >> PAGE_SHIFT)
    first = pt[0]
    if first & PG_FRAME & PDRMASK or not first & PG_A:
        return False
    bits = first & PG_PTE_PROMOTE
    expected = (first & PG_FRAME) | bits
    for pte in pt:
        if (pte & (PG_FRAME | PG_PTE_PROMOTE)) != expected:
            return False
        expected += PAGE_SIZE
    newpde = (first & PG_FRAME) | bits | PG_PS
    pmap.pm_saved_pt[va >> 21] = PHYS_TO_VM_PAGE(pt_pa)
    _pte_store(table, index, table_pa, 2, newpde, "promote", va)
    vm.cnt.pde_promotions += 1
    machine.emit("mem", "promotion", Superpage(va & ~PDRMASK, first & PG_FRAME) if machine.log.recording else None)
    pmap_invalidate_all(pmap)  # a promotion to a non-global mapping flushes the TLB (pmap_update_pde)
    return True


@kfunc
def pmap_demote_pde(pmap: Pmap, va: int) -> None:
    """Split a 2 MiB mapping back into 512 PTEs, using the PT page kept at promotion when there is one."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    table, index, table_pa = pmap_pde(pmap, va)
    pde = table[index]
    ptp = pmap.pm_saved_pt.pop(va >> 21, None)
    if ptp is None:
        ptp = _alloc_ptp("PT")
    ptp.wire_count = NPTEPG
    pt = _physmem().table(ptp.pfn)
    base = pde & PG_PS_FRAME
    bits = pde & PG_PTE_PROMOTE
    for i in range(NPTEPG):
        pt[i] = (base + i * PAGE_SIZE) | bits
    _pte_store(table, index, table_pa, 2, ptp.phys_addr | PTP_BITS, "demote", va)
    vm.cnt.pde_demotions += 1
    pmap_invalidate_page(pmap, va & ~PDRMASK)
    machine.emit("mem", "demotion", Superpage(va & ~PDRMASK, 0))


# -- whole pages ------------------------------------------------------------------------------------------------------


@kfunc
def pmap_zero_page(m) -> None:
    """Zero a page through the direct map."""
    pagezero(PHYS_TO_DMAP(m.phys_addr))


@kfunc
def pagezero(va: int) -> None:
    """Zero 4 KiB with non-temporal stores (movnti; sys/amd64/amd64/support.S): at memory speed, leaving nothing
    in the caches. A guest frame's first write also waits for its host to back it (sim/machine/host_backing.py)."""
    machine = pcpu.machine
    pfn = DMAP_TO_PHYS(va) >> PAGE_SHIFT
    machine.charge(machine.caches.nontemporal_store_ps(pfn << PAGE_SHIFT, PAGE_SIZE) // 1000
                   + machine.host.first_write(pfn))  # fmt: skip
    pcpu.kernel.vm.cnt.v_pagezero += 1
    log = machine.log
    if log.recording:
        log.delta(("frame", pfn, frame_contents(machine.physmem, pfn), FRAME_ZERO))
        machine.physmem.zero_frame(pfn)
        log.emit("mem", "page zeroed", PageZeroed(pfn << PAGE_SHIFT, va))
    else:
        machine.physmem.zero_frame(pfn)
        log.emit("mem", "page zeroed")


@kfunc
def pmap_copy_page(msrc, mdst) -> None:
    pagecopy(PHYS_TO_DMAP(msrc.phys_addr), PHYS_TO_DMAP(mdst.phys_addr))


@kfunc
def pagecopy(src: int, dst: int) -> None:
    """Copy 4 KiB: loads from wherever the source is, non-temporal stores (movnti) to the destination."""
    machine = pcpu.machine
    spfn, dpfn = DMAP_TO_PHYS(src) >> PAGE_SHIFT, DMAP_TO_PHYS(dst) >> PAGE_SHIFT
    caches = machine.caches
    ps = caches.load_ps(spfn << PAGE_SHIFT, PAGE_SIZE) + caches.nontemporal_store_ps(dpfn << PAGE_SHIFT, PAGE_SIZE)
    machine.charge(ps // 1000 + machine.host.first_write(dpfn))
    pcpu.kernel.vm.cnt.v_pagecopy += 1
    log = machine.log
    if log.recording:
        physmem = machine.physmem
        log.delta(("frame", dpfn, frame_contents(physmem, dpfn), frame_contents(physmem, spfn)))
        physmem.copy_frame(spfn, dpfn)
        log.emit("mem", "page copied", PageCopied(spfn << PAGE_SHIFT, dpfn << PAGE_SHIFT))
    else:
        machine.physmem.copy_frame(spfn, dpfn)
        log.emit("mem", "page copied")


# -- whole address spaces ---------------------------------------------------------------------------------------------


@kfunc
def pmap_pinit(pmap: Pmap) -> None:
    """A new address space's PML4: zeroed, then given the kernel's entries, so the kernel is mapped in every one."""
    from sim.vm.vm_param import DMPML4I, KPML4BASE, KPML4I, PML4PML4I

    vm = pcpu.kernel.vm
    m = _alloc_ptp("PML4")
    pmap.pm_pml4 = pmap.pm_cr3 = m.phys_addr
    pml4 = _physmem().table(m.pfn)
    kernel_pml4 = _physmem().table(vm.kernel_pmap.pm_pml4 >> PAGE_SHIFT)
    for i in (DMPML4I, KPML4BASE, KPML4I):
        pml4[i] = kernel_pml4[i]
    pml4[PML4PML4I] = m.phys_addr | PG_V | PG_RW | PG_A | PG_M  # the recursive slot: the tables map themselves
    log = pcpu.machine.log
    log.delta(("pte", m.phys_addr + PML4PML4I * 8, 0, pml4[PML4PML4I]))
    log.emit("mem", "PML4E", NewPml4(m.phys_addr, (DMPML4I, KPML4BASE, KPML4I)))


@kfunc
def pmap_remove_pages(pmap: Pmap) -> None:
    """Tear down every user mapping at exit, quickly: no per-page TLB invalidation (the %cr3 is going away)."""
    machine = pcpu.machine
    physmem = _physmem()
    cost = machine.profile.pte_update_ns
    pml4 = physmem.table(pmap.pm_pml4 >> PAGE_SHIFT)
    for i4 in range(256):
        if not pml4[i4] & PG_V:
            continue
        for i3, pdpe in enumerate(physmem.table((pml4[i4] & PG_FRAME) >> PAGE_SHIFT)):
            if not pdpe & PG_V:
                continue
            for i2, pde in enumerate(physmem.table((pdpe & PG_FRAME) >> PAGE_SHIFT)):
                if not pde & PG_V:
                    continue
                va = (i4 << 39) | (i3 << 30) | (i2 << 21)
                if pde & PG_PS:
                    pd_table, pd_index, pd_pa = pmap_pde(pmap, va)
                    _remove_pde(pmap, va, pd_table, pd_index, pd_pa)
                    continue
                pt_pa = pde & PG_FRAME
                pt = physmem.table(pt_pa >> PAGE_SHIFT)
                live = [(i, pte) for i, pte in enumerate(pt) if pte & PG_V]
                if machine.log.recording:
                    for i, pte in live:
                        machine.charge(cost)
                        page_va = va | (i << 12)
                        _pte_store(pt, i, pt_pa, 3, 0, "exit", page_va)
                        pmap.pm_resident -= 1
                        if pte & PG_W:
                            pmap.pm_wired -= 1
                        _pv_remove(pte, pmap, page_va)
                else:
                    _remove_ptes_unrecorded(pmap, pt, live, va)
                ptp = PHYS_TO_VM_PAGE(pt_pa)
                ptp.wire_count = 1
                _unwire_ptp(pmap, va, ptp)
    pmap_invalidate_all(pmap)


def _remove_ptes_unrecorded(pmap: Pmap, pt: list[int], live: list[tuple[int, int]], va: int) -> None:
    """pmap_remove_pages' per-PTE work for one page table, with recording off: the same changes and costs."""
    page_array = pcpu.kernel.vm.page_array
    log = pcpu.machine.log
    log.now += pcpu.machine.profile.pte_update_ns * len(live)
    count_unrecorded(log, len(live))  # the events _pte_store would have counted
    for i, pte in live:
        pt[i] = 0
        if pte & PG_W:
            pmap.pm_wired -= 1
        if pte & PG_MANAGED:
            m = page_array[(pte & PG_FRAME) >> PAGE_SHIFT]
            m.pv.remove((pmap, va | (i << 12)))
            if pte & PG_M:
                m.dirty = 0xFF
    pmap.pm_resident -= len(live)


@kfunc
def pmap_release(pmap: Pmap) -> None:
    """Free the PML4 of an address space with no mappings left."""
    physmem = _physmem()
    m = PHYS_TO_VM_PAGE(pmap.pm_pml4)
    physmem.zero_frame(m.pfn)
    m.wire_count = 0
    pcpu.kernel.vm.v_wire_count -= 1
    vm_page_free_zero(m)


def pmap_activate(pmap: Pmap) -> None:
    """Load this address space's page tables: a %cr3 write, which drops the old one's TLB entries."""
    machine = pcpu.machine
    if machine.cpu.regs["cr3"] != pmap.pm_cr3:
        machine.charge(machine.profile.tlb_flush_ns)
        machine.cpu.set("cr3", pmap.pm_cr3)
        machine.emit("insn", "movq %rax,%cr3", Cr3Load(pmap.pm_name, pmap.pm_cr3))


def pmap_snapshot(pmap: Pmap) -> dict[int, list[int]]:
    """Copies of every page-table page reachable from this pmap's PML4, for a later `pagewalk`."""
    physmem = _physmem()
    tables: dict[int, list[int]] = {}
    pending = [(pmap.pm_pml4, 0)]
    while pending:
        pa, level = pending.pop()
        pfn = pa >> PAGE_SHIFT
        if pfn in tables:
            continue  # the recursive slot leads back to the PML4
        table = list(physmem.table(pfn))
        tables[pfn] = table
        if level < 3:
            for entry in table:
                if entry & PG_V and not (level in (1, 2) and entry & PG_PS):
                    pending.append((entry & PG_FRAME, level + 1))
    return tables


def pmap_is_prefaultable(pmap: Pmap, va: int) -> bool:
    """True if va's page table exists and its PTE is empty: a prefault there costs no page-table page."""
    pde = pmap_pde(pmap, va)
    if pde is None:
        return False
    table, index, _ = pde
    entry = table[index]
    if not entry & PG_V or entry & PG_PS:
        return False
    return _physmem().table((entry & PG_FRAME) >> PAGE_SHIFT)[(va >> 12) & 0x1FF] == 0
