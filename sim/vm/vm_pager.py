"""Pagers (sys/vm/vm_pager.c, swap_pager.c, vnode_pager.c, device_pager.c): where an object's pages come from
when they are not resident, and where anonymous pages go under memory pressure.

Reading a page from a pager is a *hard* fault: the thread sleeps until the disk answers, so the time passes as
wall-clock time with the CPU idle, not as system time (csh's time prints it as "pf", ru_majflt).

A vnode given to vnode_pager_alloc must provide `v_path`, `v_size` (bytes), `v_object` (the slot for its VM
object, initially None) and `vm_getpage(pindex)`, returning the page's bytes (short is zero-padded) or one int
for a page filled with that byte. MemoryVnode is such a vnode, for files whose content the simulator invents
(program images).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core.events import DiskWait, FrameContents, VnodeRef
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.machine.physmem import PAGE_SIZE, frame_contents
from sim.vm.vm_object import OBJT_DEVICE, OBJT_PHYS, OBJT_SWAP, OBJT_VNODE, VmObject, _record, vm_object_allocate
from sim.vm.vm_param import atop, round_page

FRAME_BEING_READ = FrameContents(None, None, being_read=True)  # a frame the pager is filling from disk

VM_PAGER_OK = 0
VM_PAGER_BAD = 1
VM_PAGER_FAIL = 2  # the pager does not have the page
VM_PAGER_ERROR = 4
FS_BLOCK = 32 * 1024  # the file system's block: what one disk transfer moves (disk_block_ns)


class MemoryVnode:
    """A file whose pages are computed: e.g. a program's text, read from 'disk' on a hard fault."""

    def __init__(self, path: str, size: int, page: Callable[[int], bytes | int], cached: bool = False) -> None:
        self.v_path = path
        self.v_size = size
        self.v_object: VmObject | None = None
        self.v_cached = cached  # in the page cache from the start (see vnode_is_cached)
        self._page = page

    def vm_getpage(self, pindex: int) -> bytes | int:
        return self._page(pindex)

    def __repr__(self) -> str:
        return f"vnode {self.v_path}"

    def event_data(self) -> VnodeRef:
        """What an exit event records of this vnode when a kernel function returns it (sim/core/kfunc.py)."""
        return VnodeRef(self.v_path)


def vnode_size(vp) -> int:
    """The file's length: v_size for a MemoryVnode, the inode's i_size for a file system vnode."""
    size = getattr(vp, "v_size", None)
    return size if size is not None else getattr(vp, "i_size", 0)


def vnode_getpage(vp, pindex: int) -> bytes | int:
    """The file's bytes for one page, as the vnode's file system gives them (VOP_GETPAGES)."""
    return vp.vm_getpage(pindex)


def vnode_is_cached(vp) -> bool:
    """Programs and libraries are in the page cache already: they ran before (the lecture's runs: 0pf)."""
    return getattr(vp, "v_image", None) is not None or getattr(vp, "v_cached", False)


@kfunc
def vnode_pager_alloc(vp, size: int = 0) -> VmObject:
    """The vnode's VM object, made on first use; it lives as long as the vnode, caching the file's pages."""
    object = getattr(vp, "v_object", None)
    if object is not None:
        object.ref_count += 1
        return object
    object = vm_object_allocate(OBJT_VNODE, atop(round_page(max(size, vnode_size(vp)))))
    old = object.state() if pcpu.machine.log.recording else None
    object.handle = vp
    vp.v_object = object
    _record(object, old)  # the VM view names the object by its file
    if vnode_is_cached(vp):
        _populate_page_cache(object)
    return object


def _populate_page_cache(object: VmObject) -> None:
    """Make the file's pages resident, as a page cache warmed by earlier runs holds them. This stands for
    state from before the run began, so it is neither charged nor recorded."""
    from sim.vm.vm_page import PQ_INACTIVE, VM_PAGE_BITS_ALL, VmPage, _enqueue, vm_page_insert

    vm = pcpu.kernel.vm
    physmem = pcpu.machine.physmem
    vp = object.handle
    for pindex in range(object.size):
        got = vm.phys.alloc_page(False)
        if got is None:
            return
        pfn = got[0]
        m = vm.page_array.get(pfn)
        if m is None:
            m = vm.page_array[pfn] = VmPage(pfn << 12)
        m.flags = m.oflags = m.aflags = m.wire_count = 0
        m.reserv = None
        vm_page_insert(m, object, pindex)
        content = vnode_getpage(vp, pindex)
        if isinstance(content, int):
            physmem.fill_frame(pfn, content)
        else:
            physmem.write(m.phys_addr, bytes(content[:PAGE_SIZE]).ljust(PAGE_SIZE, b"\0"))
        m.valid = VM_PAGE_BITS_ALL
        _enqueue(m, PQ_INACTIVE)


def vm_pager_has_page(object: VmObject, pindex: int) -> bool:
    if object.type == OBJT_VNODE:
        return pindex < object.size
    if object.type == OBJT_SWAP:
        return pindex in object.swblk
    return object.type in (OBJT_DEVICE, OBJT_PHYS)


@kfunc
def vm_pager_get_pages(object: VmObject, m) -> int:
    """Fill page m of object from its pager."""
    if object.type == OBJT_VNODE:
        return vnode_pager_getpages(object, m)
    if object.type == OBJT_SWAP:
        return swap_pager_getpages(object, m)
    return VM_PAGER_FAIL


def _wait_for_disk(nbytes: int, object: VmObject, pindex: int, path: str | None, write: bool = False) -> None:
    """The thread sleeps until the transfer completes: wall time passes with the CPU idle."""
    machine = pcpu.machine
    costs = machine.profile
    ns = costs.disk_io_ns + costs.disk_block_ns * nbytes // FS_BLOCK  # the request, then the transfer
    if hasattr(machine, "idle"):
        machine.idle(ns)
    else:
        machine.charge(ns)
    machine.emit("proc", "sleep", DiskWait(ns, object.id, pindex, path, write))


def _install(m, content: bytes | int | None) -> None:
    physmem = pcpu.machine.physmem
    if content is None or isinstance(content, int):
        physmem.fill_frame(m.pfn, content or 0)
    elif isinstance(content, (bytes, bytearray)) and len(content) == PAGE_SIZE:
        physmem.write(m.phys_addr, content)
    elif isinstance(content, (bytes, bytearray)):
        physmem.write(m.phys_addr, bytes(content[:PAGE_SIZE]).ljust(PAGE_SIZE, b"\0"))
    else:  # a saved frame (swap): a page-table list or bytearray
        physmem.frames[m.pfn] = content.copy()
    if pcpu.machine.log.recording:
        pcpu.machine.log.delta(("frame", m.pfn, FRAME_BEING_READ, frame_contents(physmem, m.pfn)))


@kfunc
def vnode_pager_getpages(object: VmObject, m) -> int:
    """VOP_GETPAGES: read one page of the file from disk into m."""
    vm = pcpu.kernel.vm
    vp = object.handle
    if m.pindex >= object.size:
        return VM_PAGER_BAD
    _wait_for_disk(PAGE_SIZE, object, m.pindex, vp.v_path)
    _install(m, vnode_getpage(vp, m.pindex))
    vm.cnt.v_vnodein += 1
    vm.cnt.v_vnodepgsin += 1
    return VM_PAGER_OK


@kfunc
def swap_pager_getpages(object: VmObject, m) -> int:
    """Read an anonymous page back from swap."""
    vm = pcpu.kernel.vm
    content = object.swblk.pop(m.pindex, None)
    _wait_for_disk(PAGE_SIZE, object, m.pindex, None)
    _install(m, content)
    vm.cnt.v_swapin += 1
    vm.cnt.v_swappgsin += 1
    return VM_PAGER_OK


@kfunc
def swap_pager_putpages(object: VmObject, m) -> None:
    """Write an anonymous page to swap, so its frame can be freed; the object becomes OBJT_SWAP."""
    vm = pcpu.kernel.vm
    physmem = pcpu.machine.physmem
    content = physmem.content(m.pfn)
    object.swblk[m.pindex] = content.copy() if isinstance(content, (bytearray, list)) else content
    object.type = OBJT_SWAP
    _wait_for_disk(PAGE_SIZE, object, m.pindex, None, write=True)
    vm.cnt.v_swapout += 1
    vm.cnt.v_swappgsout += 1


def dev_pager_getfake(object: VmObject, pindex: int):
    """OBJT_DEVICE/OBJT_PHYS: the page at the physical address the device's d_mmap gives (a fictitious page)."""
    from sim.vm.vm_page import PG_FICTITIOUS, VM_PAGE_BITS_ALL, VmPage, vm_page_insert

    pa = object.d_mmap(pindex)
    m = VmPage(pa)
    m.flags = PG_FICTITIOUS
    m.valid = VM_PAGE_BITS_ALL
    vm_page_insert(m, object, pindex)
    return m
