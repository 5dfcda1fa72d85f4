"""Physical pages as the VM system sees them (sys/vm/vm_page.c, vm_page.h): struct vm_page, its queues, and
allocation from the free pool.

Each physical frame the VM system hands out has a vm_page recording which object and offset it caches, whether
it is valid and dirty, which paging queue it is on (active, inactive, laundry), and its pv list: the pmaps and
virtual addresses that map it. Deltas: ("page", pfn, old PageState, new PageState).
"""

from __future__ import annotations

from sim.core.events import PageRef, PageState
from sim.core.kfunc import kfunc
from sim.core.log import EventBudgetExceeded
from sim.core.pcpu import pcpu
from sim.machine.physmem import PAGE_SHIFT
from sim.vm.vm_reserv import vm_reserv_alloc_page, vm_reserv_free_page

# m->flags
PG_FICTITIOUS = 0x0004  # a fake page: a device's memory, not RAM the VM system owns
PG_ZERO = 0x0008  # known to be all zero: the zero-fill fault need not call pmap_zero_page
PG_MARKER = 0x0010
# m->oflags
VPO_UNMANAGED = 0x04  # no pv entries, never paged (page-table pages)
# m->aflags
PGA_REFERENCED = 0x01
PGA_WRITEABLE = 0x02
# m->queue
PQ_INACTIVE = 0
PQ_ACTIVE = 1
PQ_LAUNDRY = 2
PQ_NONE = 255
QUEUE_NAMES = {PQ_INACTIVE: "PQ_INACTIVE", PQ_ACTIVE: "PQ_ACTIVE", PQ_LAUNDRY: "PQ_LAUNDRY", PQ_NONE: "none"}
# vm_page_alloc's req (vm/vm_page.h, FreeBSD 11)
VM_ALLOC_NORMAL = 0
VM_ALLOC_INTERRUPT = 1
VM_ALLOC_SYSTEM = 2
VM_ALLOC_CLASS_MASK = 3
VM_ALLOC_WIRED = 0x0020  # the page is wired: never paged out (page-table pages)
VM_ALLOC_ZERO = 0x0040  # prefer a page known to be zero
VM_ALLOC_NOOBJ = 0x0100  # the page belongs to no object
VM_PAGE_BITS_ALL = 0xFF  # every DEV_BSIZE chunk of the page is valid
ACT_INIT = 5  # act_count of a newly activated page
ACT_MAX = 64
PAGE_FREE = PageState(None, 0, PQ_NONE, False, False)  # a free page's state, as the log records it
PAGE_FREE_ZERO = PageState(None, 0, PQ_NONE, False, True)  # ... one known to be all zero (PG_ZERO)


class VmPage:
    __slots__ = (
        "phys_addr",
        "object",
        "pindex",
        "flags",
        "oflags",
        "aflags",
        "queue",
        "wire_count",
        "valid",
        "dirty",
        "act_count",
        "pv",
        "reserv",
    )

    def __init__(self, phys_addr: int) -> None:
        self.phys_addr = phys_addr
        self.object = None
        self.pindex = 0
        self.flags = 0
        self.oflags = 0
        self.aflags = 0
        self.queue = PQ_NONE
        self.wire_count = 0  # for a page-table page: how many valid entries it holds, plus one
        self.valid = 0
        self.dirty = 0
        self.act_count = 0
        self.pv: list[tuple] = []  # (pmap, va) of every managed mapping of this page
        self.reserv = None  # the superpage reservation this page belongs to, if any

    @property
    def pfn(self) -> int:
        return self.phys_addr >> PAGE_SHIFT

    def __repr__(self) -> str:
        return f"page {self.phys_addr:#x}"

    def event_data(self) -> PageRef:
        """What an exit event records of this page when a kernel function returns it (sim/core/kfunc.py)."""
        return PageRef(self.phys_addr)

    def state(self) -> PageState:
        """What the event log records of this page (the value of its ("page", ...) deltas)."""
        object_id = self.object.id if self.object is not None else None
        return PageState(object_id, self.pindex, self.queue, bool(self.wire_count), False)


class VmPageQueue:
    """One paging queue, oldest page first (a dict kept as an ordered set)."""

    __slots__ = ("name", "pages")

    def __init__(self, name: str) -> None:
        self.name = name
        self.pages: dict[VmPage, None] = {}

    def __len__(self) -> int:
        return len(self.pages)


def PHYS_TO_VM_PAGE(pa: int) -> VmPage:  # noqa: N802 - the kernel's macro
    vm = pcpu.kernel.vm
    pfn = pa >> PAGE_SHIFT
    m = vm.page_array.get(pfn)
    if m is None:
        m = vm.page_array[pfn] = VmPage(pfn << PAGE_SHIFT)
    return m


def _record(m: VmPage, old: PageState) -> None:
    log = pcpu.machine.log
    if log.recording:
        log.delta(("page", m.pfn, old, m.state()))


@kfunc
def vm_page_alloc(object, pindex: int, req: int) -> VmPage | None:
    """Allocate a page for `object` at `pindex` (or none, VM_ALLOC_NOOBJ); None if memory is short.

    A normal allocation leaves the last few free pages to the system (v_free_reserved): the caller then waits
    for the page daemon (VM_WAIT), as vm_fault does.
    """
    machine, vm = pcpu.machine, pcpu.kernel.vm
    machine.charge(machine.profile.vm_page_alloc_ns)
    if req & VM_ALLOC_CLASS_MASK == VM_ALLOC_NORMAL and vm.free_count() <= vm.v_free_reserved:
        return None
    pfn = None
    zero = False
    reserved = None
    if object is not None and not req & VM_ALLOC_NOOBJ:
        reserved = vm_reserv_alloc_page(object, pindex)
    if reserved is not None:
        pfn, rv = reserved
    else:
        rv = None
        got = vm.phys.alloc_page(bool(req & VM_ALLOC_ZERO))
        if got is None:
            got = vm.reclaim_reservation()
            if got is None:
                return None
        pfn, zero = got
    m = vm.page_array.get(pfn)
    if m is None:
        m = vm.page_array[pfn] = VmPage(pfn << PAGE_SHIFT)
    m.reserv = rv
    # Only PG_ZERO is inherited from the free page, and only if the caller asked for a zeroed page.
    m.flags = PG_ZERO if zero and req & VM_ALLOC_ZERO else 0
    m.oflags = 0
    m.aflags = 0
    m.valid = 0
    m.dirty = 0
    m.act_count = 0
    m.wire_count = 1 if req & VM_ALLOC_WIRED else 0
    if req & VM_ALLOC_NOOBJ or object is None:
        m.object = None
        m.oflags = VPO_UNMANAGED
    else:
        vm_page_insert(m, object, pindex)
    if req & VM_ALLOC_WIRED:
        vm.v_wire_count += 1
    _record(m, PAGE_FREE)
    return m


def vm_page_insert(m: VmPage, object, pindex: int) -> None:
    m.object = object
    m.pindex = pindex
    object.memq[pindex] = m
    object.resident_page_count += 1


def vm_page_remove(m: VmPage) -> None:
    object = m.object
    if object is not None:
        del object.memq[m.pindex]
        object.resident_page_count -= 1
        m.object = None


def vm_page_unwire(m: VmPage) -> bool:
    """Drop one wiring of a managed page; True when it was the last (the caller then queues or frees it)."""
    if m.oflags & VPO_UNMANAGED or m.flags & PG_FICTITIOUS or not m.wire_count:
        return False
    old = m.state() if pcpu.machine.log.recording else None
    m.wire_count -= 1
    if m.wire_count == 0:
        pcpu.kernel.vm.v_wire_count -= 1
    _record(m, old)
    return m.wire_count == 0


@kfunc
def vm_page_free(m: VmPage) -> None:
    """Return a page to the free pool: take it off its object and queue (it must be unmapped already)."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    machine.log.now += machine.profile.vm_page_free_ns
    old = m.state() if machine.log.recording else None
    if m.queue != PQ_NONE:  # vm_page_dequeue
        del vm.queues[m.queue].pages[m]
        m.queue = PQ_NONE
    object = m.object
    if object is not None:  # vm_page_remove
        del object.memq[m.pindex]
        object.resident_page_count -= 1
        m.object = None
    if m.wire_count:
        vm.v_wire_count -= 1
        m.wire_count = 0
    m.valid = 0
    m.dirty = 0
    vm.cnt.v_tfree += 1
    if m.reserv is not None:
        vm_reserv_free_page(m)
    else:
        vm.phys.free_page(m.pfn, bool(m.flags & PG_ZERO))
    if machine.log.recording:
        machine.log.delta(("page", m.pfn, old, PAGE_FREE_ZERO if m.flags & PG_ZERO else PAGE_FREE))


def vm_page_free_many(pages: list[VmPage]) -> None:
    """vm_page_free of each page; with recording off, without the per-call frame events (still counted)."""
    log = pcpu.machine.log
    if log.recording:
        for m in pages:
            vm_page_free(m)
        return
    free = vm_page_free.__wrapped__
    for m in pages:
        free(m)
    log.unrecorded += 2 * len(pages)  # each call's enter and exit frame events
    if log.unrecorded + log.record_budget > log.event_budget:
        raise EventBudgetExceeded(log.event_budget)


def vm_page_free_zero(m: VmPage) -> None:
    """Free a page known to be all zero, e.g. an emptied page-table page (pmap_free_zero_pages)."""
    m.flags |= PG_ZERO
    vm_page_free(m)


def vm_page_dequeue(m: VmPage) -> None:
    if m.queue != PQ_NONE:
        del pcpu.kernel.vm.queues[m.queue].pages[m]
        m.queue = PQ_NONE


def _enqueue(m: VmPage, queue: int) -> None:
    vm = pcpu.kernel.vm
    if m.queue != PQ_NONE:
        del vm.queues[m.queue].pages[m]
    m.queue = queue
    vm.queues[queue].pages[m] = None


def vm_page_activate(m: VmPage) -> None:
    """Put a page just used on the active queue (or, if it is already there, note it was used)."""
    if m.wire_count or m.oflags & VPO_UNMANAGED or m.flags & PG_FICTITIOUS:
        return
    if m.queue == PQ_ACTIVE:
        m.act_count = min(ACT_MAX, max(m.act_count, ACT_INIT))
        return
    old = m.state() if pcpu.machine.log.recording else None
    if m.queue == PQ_INACTIVE:
        pcpu.kernel.vm.cnt.v_reactivated += 1
    _enqueue(m, PQ_ACTIVE)
    m.act_count = ACT_INIT
    _record(m, old)


def vm_page_deactivate(m: VmPage) -> None:
    if m.wire_count or m.queue == PQ_INACTIVE:
        return
    old = m.state() if pcpu.machine.log.recording else None
    _enqueue(m, PQ_INACTIVE)
    _record(m, old)


def vm_page_rename(m: VmPage, new_object, new_pindex: int) -> None:
    """Move a page to another object (the COW optimisation: the backing object's only user takes it over)."""
    old = m.state() if pcpu.machine.log.recording else None
    vm_page_remove(m)
    vm_page_insert(m, new_object, new_pindex)
    m.dirty = VM_PAGE_BITS_ALL
    _record(m, old)


def vm_page_wire(m: VmPage) -> None:
    """Wire a managed page: off the paging queues, so the page daemon leaves it alone until it is unwired."""
    if m.oflags & VPO_UNMANAGED or m.flags & PG_FICTITIOUS:
        return
    old = m.state() if pcpu.machine.log.recording else None
    if m.wire_count == 0:
        vm_page_dequeue(m)
        pcpu.kernel.vm.v_wire_count += 1
    m.wire_count += 1
    _record(m, old)


@kfunc
def vm_page_grab(object, pindex: int, allocflags: int) -> VmPage:
    """The object's page at pindex: the resident one (wired if asked), else a new page, not yet valid. The
    buffer cache takes a file's pages this way (vfs_vmio_extend), so a buffer and a mapping share them."""
    m = object.memq.get(pindex)
    if m is not None:
        if allocflags & VM_ALLOC_WIRED:
            vm_page_wire(m)
        return m
    m = vm_page_alloc(object, pindex, allocflags)
    while m is None:  # VM_ALLOC_SYSTEM digs into the reserve; past it, wait for the page daemon (VM_WAIT)
        from sim.vm.vm_pageout import vm_wait

        vm_wait()
        m = object.memq.get(pindex) or vm_page_alloc(object, pindex, allocflags)
    return m
