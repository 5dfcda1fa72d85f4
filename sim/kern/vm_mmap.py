"""mmap(2), munmap(2), mprotect(2) and minherit(2) (sys/vm/vm_mmap.c, FreeBSD 11).

mmap only makes a map entry: no page is read, zeroed or mapped until it is touched (demand paging), except
that a file's pages already in the page cache are mapped at once when asked (MAP_PREFAULT_READ) or, for the
first 96 pages, anyway (MAP_PREFAULT_PARTIAL). A private mapping of a file is copy-on-write; a shared one is
also shared with children after fork. Anonymous memory's object is made by the first fault.
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.kern.errno import EACCES, EBADF, EINVAL, ENODEV, ENOMEM
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread
from sim.vm.vm_map import VmMap, vm_map_delete, vm_map_find, vm_map_inherit, vm_map_insert, vm_map_protect
from sim.vm.vm_param import (
    KERN_INVALID_ADDRESS,
    KERN_NO_SPACE,
    KERN_PROTECTION_FAILURE,
    KERN_RESOURCE_SHORTAGE,
    KERN_SUCCESS,
    MAP_CHECK_EXCL,
    MAP_COPY_ON_WRITE,
    MAP_DISABLE_COREDUMP,
    MAP_DISABLE_SYNCER,
    MAP_INHERIT_SHARE,
    MAP_PREFAULT,
    MAP_PREFAULT_PARTIAL,
    MAP_STACK_GROWS_DOWN,
    MAXDSIZ,
    PAGE_MASK,
    VM_PROT_ALL,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    VMFS_OPTIMAL_SPACE,
    VMFS_SUPER_SPACE,
    round_page,
    trunc_page,
)

# sys/mman.h
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0x00, 0x01, 0x02, 0x04
MAP_SHARED = 0x0001
MAP_PRIVATE = 0x0002
MAP_FIXED = 0x0010
MAP_RESERVED0020 = 0x0020
MAP_RESERVED0040 = 0x0040
MAP_HASSEMAPHORE = 0x0200
MAP_STACK = 0x0400
MAP_NOSYNC = 0x0800
MAP_ANON = 0x1000
MAP_EXCL = 0x00004000
MAP_NOCORE = 0x00020000
MAP_PREFAULT_READ = 0x00040000
MAP_32BIT = 0x00080000
MAP_ALIGNMENT_SHIFT = 24
MAP_ALIGNMENT_MASK = 0xFF << MAP_ALIGNMENT_SHIFT
MAP_ALIGNED_SUPER = 1 << MAP_ALIGNMENT_SHIFT
MAP_32BIT_MAX_ADDR = 1 << 31
MAP_FAILED = (1 << 64) - 1
_KNOWN_FLAGS = (
    MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_HASSEMAPHORE | MAP_STACK | MAP_NOSYNC | MAP_ANON | MAP_EXCL
    | MAP_NOCORE | MAP_PREFAULT_READ | MAP_32BIT | MAP_ALIGNMENT_MASK
)  # fmt: skip


def vm_mmap_to_errno(rv: int) -> int:
    if rv == KERN_SUCCESS:
        return 0
    if rv in (KERN_INVALID_ADDRESS, KERN_NO_SPACE, KERN_RESOURCE_SHORTAGE):
        return ENOMEM
    if rv == KERN_PROTECTION_FAILURE:
        return EACCES
    return EINVAL


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@syscall_handler
@kfunc
def sys_mmap(td: Thread, addr: int, len: int, prot: int, flags: int, fd: int, pos: int) -> int:
    error, address = kern_mmap(td, addr, len, prot, flags, _signed(fd, 32), _signed(pos, 64))
    if error == 0:
        td.set_retval(0, address)
    return error


@kfunc
def kern_mmap(td: Thread, addr: int, size: int, prot: int, flags: int, fd: int, pos: int) -> tuple[int, int]:
    vms = td.td_proc.p_vmspace
    map = vms.vm_map
    prot &= 0xFFFFFFFF
    flags &= ~(MAP_RESERVED0020 | MAP_RESERVED0040) & 0xFFFFFFFF
    # A mapping of length 0, or an anonymous one with a descriptor or offset, is an error for new binaries.
    if size == 0 or (flags & MAP_ANON and (fd != -1 or pos != 0)):
        return EINVAL, 0
    if flags & MAP_STACK:
        if fd != -1 or (prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE):
            return EINVAL, 0
        flags |= MAP_ANON
        pos = 0
    if flags & ~_KNOWN_FLAGS:
        return EINVAL, 0
    if (flags & (MAP_EXCL | MAP_FIXED)) == MAP_EXCL:
        return EINVAL, 0
    if (flags & (MAP_SHARED | MAP_PRIVATE)) == (MAP_SHARED | MAP_PRIVATE):
        return EINVAL, 0
    if prot != PROT_NONE and prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
        return EINVAL, 0
    # Map whole pages: the file position's offset within its page is carried by the address returned.
    pageoff = pos & PAGE_MASK
    pos -= pageoff
    size = round_page(size + pageoff)
    align = flags & MAP_ALIGNMENT_MASK
    if align not in (0, MAP_ALIGNED_SUPER) and not 12 <= align >> MAP_ALIGNMENT_SHIFT < 64:
        return EINVAL, 0
    if flags & MAP_FIXED:
        addr -= pageoff
        if addr & PAGE_MASK:
            return EINVAL, 0
        if addr < map.min_offset or addr + size > map.max_offset:
            return EINVAL, 0
    elif addr == 0 or (round_page(vms.vm_taddr) <= addr < round_page(vms.vm_daddr + MAXDSIZ)):
        # No hint, or one inside where the heap could grow: place it above the largest possible heap.
        addr = round_page(vms.vm_daddr + MAXDSIZ)
    if flags & MAP_ANON:
        error, addr = vm_mmap_object(map, addr, size, prot, VM_PROT_ALL, flags, None, pos, td)
    else:
        error, addr = _mmap_file(td, map, addr, size, prot, flags, fd, pos)
    return error, (addr + pageoff if error == 0 else 0)


def _mmap_file(td: Thread, map: VmMap, addr: int, size: int, prot: int, flags: int, fd: int, pos: int):
    """fo_mmap for a vnode (vn_mmap) or a character device (/dev/zero maps as anonymous memory)."""
    from sim.kern.kern_descrip import DTYPE_VNODE, FREAD, FWRITE, fget
    from sim.kern.vfs_subr import VCHR, VREG
    from sim.vm.vm_pager import vnode_pager_alloc

    fp = fget(td, fd)
    if fp is None:
        return EBADF, 0
    if fp.f_type != DTYPE_VNODE or fp.f_vnode is None:
        return ENODEV, 0
    if not flags & (MAP_SHARED | MAP_PRIVATE):
        return EINVAL, 0  # FreeBSD 11 binaries must say which (P_OSREL_MAP_FSTRICT)
    vp = fp.f_vnode
    if vp.v_type == VCHR:
        if getattr(vp.v_rdev, "d_name", "") == "zero":
            # D_MMAP_ANON: mapping /dev/zero is mapping anonymous memory.
            return vm_mmap_object(map, addr, size, prot, VM_PROT_ALL, flags | MAP_ANON, None, 0, td)
        return ENODEV, 0
    if vp.v_type != VREG:
        return ENODEV, 0
    maxprot = VM_PROT_EXECUTE
    if fp.f_flag & FREAD:
        maxprot |= VM_PROT_READ
    elif prot & VM_PROT_READ:
        return EACCES, 0
    if flags & MAP_SHARED:
        if fp.f_flag & FWRITE:
            maxprot |= VM_PROT_WRITE
        elif prot & VM_PROT_WRITE:
            return EACCES, 0
    else:
        maxprot |= VM_PROT_WRITE
    object = vnode_pager_alloc(vp, 0)
    error, addr = vm_mmap_object(map, addr, size, prot, maxprot, flags, object, pos, td)
    if error:
        from sim.vm.vm_object import vm_object_deallocate

        vm_object_deallocate(object)
    return error, addr


@kfunc
def vm_mmap_object(
    map: VmMap, addr: int, size: int, prot: int, maxprot: int, flags: int, object, foff: int, td: Thread
) -> tuple[int, int]:
    """Enter the mapping in the map, at addr (MAP_FIXED) or the first fit at or above it."""
    if foff & PAGE_MASK:
        return EINVAL, 0
    fitit = not flags & MAP_FIXED
    if fitit:
        addr = round_page(addr)
    elif addr != trunc_page(addr):
        return EINVAL, 0
    if flags & MAP_ANON:
        if object is not None or foff != 0:
            return EINVAL, 0
        docow = 0
    elif flags & MAP_PREFAULT_READ:
        docow = MAP_PREFAULT
    else:
        docow = MAP_PREFAULT_PARTIAL
    if not flags & (MAP_ANON | MAP_SHARED):
        docow |= MAP_COPY_ON_WRITE
    if flags & MAP_NOSYNC:
        docow |= MAP_DISABLE_SYNCER
    if flags & MAP_NOCORE:
        docow |= MAP_DISABLE_COREDUMP
    if flags & MAP_SHARED:
        docow |= MAP_INHERIT_SHARE  # shared memory is also shared with children
    if flags & MAP_STACK:
        if object is not None:
            return EINVAL, 0
        docow |= MAP_STACK_GROWS_DOWN
    if flags & MAP_EXCL:
        docow |= MAP_CHECK_EXCL
    if fitit:
        if (flags & MAP_ALIGNMENT_MASK) == MAP_ALIGNED_SUPER:
            findspace = VMFS_SUPER_SPACE
        else:
            findspace = VMFS_OPTIMAL_SPACE
        max_addr = MAP_32BIT_MAX_ADDR if flags & MAP_32BIT else 0
        rv, addr = vm_map_find(map, object, foff, addr, size, max_addr, findspace, prot, maxprot, docow)
    else:
        rv = vm_map_fixed(map, object, foff, addr, size, prot, maxprot, docow)
    return vm_mmap_to_errno(rv), addr


@kfunc
def vm_map_fixed(map: VmMap, object, offset: int, start: int, length: int, prot: int, maxprot: int, cow: int) -> int:
    """Map at exactly start, replacing whatever was there (unless MAP_EXCL asked to fail instead)."""
    end = start + length
    if start < map.min_offset or end > map.max_offset:
        return KERN_INVALID_ADDRESS
    if not cow & MAP_CHECK_EXCL:
        vm_map_delete(map, start, end)
    return vm_map_insert(map, object, offset, start, end, prot, maxprot, cow & ~MAP_CHECK_EXCL)


def _user_range(addr: int, size: int) -> tuple[int, int] | None:
    """Page-align [addr, addr + size) as these calls do; None if it wraps."""
    pageoff = addr & PAGE_MASK
    addr -= pageoff
    size = round_page(size + pageoff)
    if addr + size >= 1 << 64:
        return None
    return addr, size


@syscall_handler
@kfunc
def sys_munmap(td: Thread, addr: int, len: int) -> int:
    if len == 0:
        return EINVAL
    aligned = _user_range(addr, len)
    if aligned is None:
        return EINVAL
    addr, size = aligned
    map = td.td_proc.p_vmspace.vm_map
    if addr < map.min_offset or addr + size > map.max_offset:
        return EINVAL
    vm_map_delete(map, addr, addr + size)
    return 0


@syscall_handler
@kfunc
def sys_mprotect(td: Thread, addr: int, len: int, prot: int) -> int:
    aligned = _user_range(addr, len)
    if aligned is None:
        return EINVAL
    addr, size = aligned
    map = td.td_proc.p_vmspace.vm_map
    start, end = max(addr, map.min_offset), min(addr + size, map.max_offset)  # VM_MAP_RANGE_CHECK
    if start >= end:
        return 0
    rv = vm_map_protect(map, start, end, prot & VM_PROT_ALL, False)
    if rv == KERN_SUCCESS:
        return 0
    if rv == KERN_PROTECTION_FAILURE:
        return EACCES
    if rv == KERN_RESOURCE_SHORTAGE:
        return ENOMEM
    return EINVAL


@syscall_handler
@kfunc
def sys_minherit(td: Thread, addr: int, len: int, inherit: int) -> int:
    aligned = _user_range(addr, len)
    if aligned is None:
        return EINVAL
    addr, size = aligned
    map = td.td_proc.p_vmspace.vm_map
    start, end = max(addr, map.min_offset), min(addr + size, map.max_offset)
    if start >= end:
        return 0
    rv = vm_map_inherit(map, start, end, _signed(inherit, 32))
    if rv == KERN_SUCCESS:
        return 0
    if rv == KERN_PROTECTION_FAILURE:
        return EACCES
    return EINVAL
