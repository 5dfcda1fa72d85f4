"""Superpage reservations (sys/vm/vm_reserv.c): how 2 MiB pages come about without anyone asking for them.

The first fault in an anonymous or file object's 2 MiB-aligned range reserves a whole, physically contiguous,
aligned 2 MiB block for that range; every later page of the range is allocated from the block, at the matching
offset. Once all 512 pages are resident and mapped alike, pmap_promote_pde() replaces the 512 PTEs by one PDE
with PS set: one TLB entry for 2 MiB. The range is aligned in the *virtual* address space through the object's
colour (vm_object_color: the offset of the mapping's virtual pages from the object's page indices).
"""

from __future__ import annotations

from sim.core.pcpu import pcpu
from sim.vm.vm_phys import NPAGES_PER_BLOCK

OBJ_COLORED = 0x1000  # vm/vm_object.h: pg_color is set


class VmReserv:
    __slots__ = ("pfn", "object", "first_pindex", "popcnt", "popmap")

    def __init__(self, pfn: int, object, first_pindex: int) -> None:
        self.pfn = pfn  # first frame of the 2 MiB block
        self.object = object
        self.first_pindex = first_pindex
        self.popcnt = 0
        self.popmap = 0  # bit i: the block's page i is allocated

    def __repr__(self) -> str:
        return f"reservation {self.pfn << 12:#x} ({self.popcnt}/512)"


def vm_object_color(object, color: int) -> None:
    """Remember how the object's pages line up with virtual superpages, at its first fault."""
    if not object.flags & OBJ_COLORED:
        object.pg_color = color & (NPAGES_PER_BLOCK - 1)
        object.flags |= OBJ_COLORED


def vm_reserv_alloc_page(object, pindex: int) -> tuple[int, VmReserv] | None:
    """A frame for (object, pindex) from its reservation, making one if the object can use a superpage there."""
    if not object.flags & OBJ_COLORED or not pcpu.kernel.vm.superpages_enabled:
        return None
    index = (pindex + object.pg_color) & (NPAGES_PER_BLOCK - 1)
    first = pindex - index
    rv = object.rvq.get(first)
    if rv is None:
        # Only if the whole superpage lies inside the object: else its tail could never be populated.
        if first < 0 or first + NPAGES_PER_BLOCK > object.size:
            return None
        vm = pcpu.kernel.vm
        base = vm.phys.alloc_block()
        if base is None:
            return None
        rv = VmReserv(base, object, first)
        object.rvq[first] = rv
        vm.reservs[base] = rv
        vm.v_reserved_free += NPAGES_PER_BLOCK
    bit = 1 << index
    if rv.popmap & bit:
        return None  # that frame went elsewhere (e.g. renamed into another object): fall back
    rv.popmap |= bit
    rv.popcnt += 1
    pcpu.kernel.vm.v_reserved_free -= 1
    return rv.pfn + index, rv


def vm_reserv_free_page(m) -> None:
    """A page of a reservation is freed: the block goes back whole once its last page is freed."""
    vm = pcpu.kernel.vm
    rv = m.reserv
    m.reserv = None
    rv.popmap &= ~(1 << (m.pfn - rv.pfn))
    rv.popcnt -= 1
    vm.v_reserved_free += 1
    if rv.popcnt == 0:
        _dissolve(rv)
        vm.phys.free_block(rv.pfn)


def _dissolve(rv: VmReserv) -> None:
    vm = pcpu.kernel.vm
    if rv.object is not None and rv.object.rvq.get(rv.first_pindex) is rv:
        del rv.object.rvq[rv.first_pindex]
    rv.object = None
    del vm.reservs[rv.pfn]
    vm.v_reserved_free -= NPAGES_PER_BLOCK - rv.popcnt


def vm_reserv_break(rv: VmReserv) -> None:
    """Give a reservation's unused pages back as single pages (vm_reserv_reclaim_inactive under pressure)."""
    vm = pcpu.kernel.vm
    used = {rv.pfn + i for i in range(NPAGES_PER_BLOCK) if rv.popmap >> i & 1}
    for pfn in used:
        page = vm.page_array.get(pfn)
        if page is not None:
            page.reserv = None
    _dissolve(rv)
    vm.phys.release_unused(rv.pfn, used)
