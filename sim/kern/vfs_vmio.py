"""The merged VM/buffer cache: the buffer cache's VMIO half (sys/kern/vfs_bio.c, FreeBSD 11).

A regular file's buffers hold no memory of their own. getblk() gives a new buffer the pages of the file's vm_object
at the block's offset (allocbuf -> vfs_vmio_extend -> vm_page_grab, wiring each page while the buffer holds it), so
the page a read() copies from is the page an mmap() of the same offset maps: a fault finds it resident in the
vnode's object (a soft fault, no disk I/O), and a write() into the file shows through every mapping at once. The
buffers are unmapped (GB_UNMAPPED, as UFS asks on amd64): ffs_read and ffs_write move the data with
uiomove_fromphys over b_pages, through the direct map, not through b_data.

A block's pages become valid when its disk read completes (vfs_vmio_iodone), when a write fills them
(vfs_clean_pages_dirty_buf, at bdwrite and bwrite) or when a block the disk does not hold is zeroed
(vfs_bio_clrbuf). A read that finds some pages valid already (a fault brought one in) fills only the others, as
FreeBSD's bogus_page arranges. A buffer released (brelse with B_RELBUF) unwires its pages (vfs_vmio_release).
Not modelled: pages dirtied through a shared mapping reach the disk only through a buffer (no msync, no
vnode_pager_putpages).
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.uio import UIO_READ, Uio, uiomove
from sim.machine.physmem import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, frame_contents
from sim.vm.pmap import pmap_zero_page
from sim.vm.vm_object import VmObject, vm_object_page_remove
from sim.vm.vm_page import (
    VM_ALLOC_SYSTEM,
    VM_ALLOC_WIRED,
    VM_PAGE_BITS_ALL,
    vm_page_deactivate,
    vm_page_free,
    vm_page_grab,
    vm_page_unwire,
)
from sim.vm.vm_pager import vnode_pager_alloc
from sim.vm.vm_param import atop, round_page

B_VMIO = 0x20000000  # b_flags: the buffer's memory is its vnode's VM pages (sys/sys/buf.h)
VMIO_GRAB = VM_ALLOC_SYSTEM | VM_ALLOC_WIRED  # vfs_vmio_extend's vm_page_grab (NOBUSY: nothing here is busied)


@kfunc
def vnode_create_vobject(vp) -> VmObject:
    """The file's VM object, which caches its pages for the buffer cache and for mmap() alike. FreeBSD makes it
    when the file is opened (ufs_open); here the file's first new buffer makes it, so opening a file only to read
    buffers cached before the run began (rtld's hints, sim/user/rtld.py) costs what it did."""
    return vp.v_object if vp.v_object is not None else vnode_pager_alloc(vp, vp.i_size)


def vnode_pager_setsize(vp, nsize: int) -> None:
    """The file's length changed (ffs_write extending it, a truncation): the object covers its pages, and a
    shrink frees the pages past the new end, buffers' and mappings' alike."""
    object = vp.v_object
    if object is None:
        return
    pages = atop(round_page(nsize))
    beyond = max(object.memq, default=-1) + 1  # a buffer of the last block holds pages past the end of the file
    if beyond > pages:
        vm_object_page_remove(object, pages, beyond)
    object.size = pages


@kfunc
def allocbuf(bp, size: int) -> None:
    """Give a new VMIO buffer its block's pages."""
    bp.b_flags |= B_VMIO
    vfs_vmio_extend(bp, atop(round_page(size)), size)


@kfunc
def vfs_vmio_extend(bp, desiredpages: int, size: int) -> None:
    object = bp.b_vp.v_object
    first = atop(bp.b_lblkno * size)
    while len(bp.b_pages) < desiredpages:
        bp.b_pages.append(vm_page_grab(object, first + len(bp.b_pages), VMIO_GRAB))


@kfunc
def vfs_vmio_release(bp, direct: bool) -> None:
    """brelse() lets a VMIO buffer go: each page is unwired, and one that no mapping uses and that holds nothing
    unwritten is freed at once for an O_DIRECT buffer (vm_page_try_to_free), so its block comes from the disk
    again; any other page stays valid in the file's object, on the inactive queue."""
    for m in bp.b_pages:
        if vm_page_unwire(m):
            if direct and not m.pv and not m.dirty:
                vm_page_free(m)
            else:
                vm_page_deactivate(m)
    bp.b_pages = []


def vfs_buf_test_cache(bp) -> bool:
    """Every page of the block already valid (e.g. brought in by faults on a mapping): no read needed."""
    return all(m.valid == VM_PAGE_BITS_ALL for m in bp.b_pages)


@kfunc
def vfs_bio_clrbuf(bp) -> None:
    """A block the disk does not hold (a hole, a file's new block): zero the pages not valid yet."""
    for m in bp.b_pages:
        if m.valid != VM_PAGE_BITS_ALL:
            pmap_zero_page(m)
            m.valid = VM_PAGE_BITS_ALL


def vfs_vmio_iodone(bp, data: bytes) -> None:
    """A block's disk read completed: its bytes go into the pages not valid yet (a valid page keeps what it holds:
    FreeBSD reads into bogus_page there)."""
    for i, m in enumerate(bp.b_pages):
        if m.valid != VM_PAGE_BITS_ALL:
            _store(m.phys_addr, data[i * PAGE_SIZE : (i + 1) * PAGE_SIZE].ljust(PAGE_SIZE, b"\0"))
            m.valid = VM_PAGE_BITS_ALL


def vfs_clean_pages_dirty_buf(bp) -> None:
    """bdwrite and bwrite: the written pages are valid, and clean to the VM system (the buffer, a delayed or
    started write, is what takes their bytes to the disk)."""
    for m in bp.b_pages:
        m.valid = VM_PAGE_BITS_ALL
        m.dirty = 0


def vmio_block(bp) -> bytes:
    """The block's bytes as its pages hold them: what a write puts on the disk."""
    physmem = pcpu.machine.physmem
    return b"".join(physmem.read(m.phys_addr, PAGE_SIZE) for m in bp.b_pages)


@kfunc
def uiomove_fromphys(ma: list, offset: int, n: int, uio: Uio) -> int:
    """uiomove() over physical pages (sys/amd64/amd64/uio_machdep.c): each page through the direct map, so an
    unmapped buffer needs no kernel mapping. 0 or EFAULT."""
    physmem = pcpu.machine.physmem
    move = uiomove.__wrapped__  # the same copy loop, without a frame of its own per page (FreeBSD's is inline)
    while n > 0 and uio.uio_resid > 0:
        pa = ma[offset >> PAGE_SHIFT].phys_addr + (offset & PAGE_MASK)
        cnt = min(n, PAGE_SIZE - (offset & PAGE_MASK), uio.uio_resid)
        if uio.uio_rw == UIO_READ:
            error = move(physmem.read(pa, cnt), cnt, uio)
        else:
            chunk = bytearray(cnt)
            error = move(chunk, cnt, uio)
            if not error:
                _store(pa, chunk)
        if error:
            return error
        offset += cnt
        n -= cnt
    return 0


def _store(pa: int, data: bytes | bytearray) -> None:
    machine = pcpu.machine
    physmem, log = machine.physmem, machine.log
    old = frame_contents(physmem, pa >> PAGE_SHIFT) if log.recording else None
    physmem.write(pa, data)
    if log.recording:
        log.delta(("frame", pa >> PAGE_SHIFT, old, frame_contents(physmem, pa >> PAGE_SHIFT)))
