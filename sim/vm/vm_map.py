"""Address maps (sys/vm/vm_map.c, FreeBSD 11): a process's address space as a sorted list of entries.

Each vm_map_entry says what one range of virtual addresses maps: an object and an offset in it, the protection
now allowed and the most it may ever be (max_protection), what a child gets at fork (inheritance), and whether the
object is shared copy-on-write (MAP_ENTRY_COW) and still needs its own shadow before the first write
(MAP_ENTRY_NEEDS_COPY). A struct vmspace pairs the map with the pmap that makes it real.

Deltas: ("map", MapKey(vmspace, start), old MapEntry or None, new MapEntry or None).
"""

from __future__ import annotations

import bisect

from sim.core.events import EntryRef, MapEntry, MapKey, VmspaceRef
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.vm.pmap import Pmap, pmap_pinit, pmap_protect, pmap_release, pmap_remove, pmap_remove_pages, pmap_snapshot
from sim.vm.vm_object import (
    OBJ_ONEMAPPING,
    OBJT_DEFAULT,
    VmObject,
    vm_object_allocate,
    vm_object_clear_flag,
    vm_object_collapse,
    vm_object_deallocate,
    vm_object_page_remove,
    vm_object_reference,
    vm_object_shadow,
)
from sim.vm.vm_param import (
    KERN_INVALID_ADDRESS,
    KERN_INVALID_ARGUMENT,
    KERN_NO_SPACE,
    KERN_PROTECTION_FAILURE,
    KERN_SUCCESS,
    MAP_COPY_ON_WRITE,
    MAP_DISABLE_COREDUMP,
    MAP_ENTRY_COW,
    MAP_ENTRY_GROWS_DOWN,
    MAP_ENTRY_NEEDS_COPY,
    MAP_ENTRY_NOCOREDUMP,
    MAP_INHERIT_SHARE,
    MAP_PREFAULT,
    MAP_PREFAULT_PARTIAL,
    MAP_STACK_GROWS_DOWN,
    NBPDR,
    OFF_TO_IDX,
    PDRMASK,
    VM_INHERIT_COPY,
    VM_INHERIT_DEFAULT,
    VM_INHERIT_NONE,
    VM_INHERIT_SHARE,
    VM_MAXUSER_ADDRESS,
    VM_MIN_ADDRESS,
    VM_PROT_COPY,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    VMFS_ANY_SPACE,
    VMFS_NO_SPACE,
    VMFS_OPTIMAL_SPACE,
    VMFS_SUPER_SPACE,
    atop,
)


class VmMapEntry:
    __slots__ = ("start", "end", "object", "offset", "protection", "max_protection", "inheritance", "eflags", "wired")

    def __init__(self, start: int, end: int, object: VmObject | None, offset: int, prot: int, maxprot: int) -> None:
        self.start = start
        self.end = end
        self.object = object
        self.offset = offset  # bytes into the object
        self.protection = prot
        self.max_protection = maxprot
        self.inheritance = VM_INHERIT_DEFAULT
        self.eflags = 0
        self.wired = 0

    def copy(self) -> VmMapEntry:
        other = VmMapEntry(self.start, self.end, self.object, self.offset, self.protection, self.max_protection)
        other.inheritance = self.inheritance
        other.eflags = self.eflags
        other.wired = self.wired
        return other

    def state(self) -> MapEntry:
        """What the event log records of this entry (the value of its ("map", ...) deltas)."""
        object_id = self.object.id if self.object is not None else None
        return MapEntry(self.start, self.end, self.protection, self.max_protection, self.inheritance, object_id,
                        self.offset, self.eflags)  # fmt: skip

    def event_data(self) -> EntryRef:
        """What an exit event records of this entry when a kernel function returns it (sim/core/kfunc.py)."""
        return EntryRef(self.state())


class VmMap:
    __slots__ = ("entries", "min_offset", "max_offset", "pmap", "size", "timestamp", "name", "hint")

    def __init__(self, pmap: Pmap, min_offset: int, max_offset: int, name: str) -> None:
        self.entries: list[VmMapEntry] = []  # sorted by start, never overlapping
        self.min_offset = min_offset
        self.max_offset = max_offset
        self.pmap = pmap
        self.size = 0
        self.timestamp = 0
        self.name = name
        self.hint: VmMapEntry | None = None  # the entry last looked up

    def __repr__(self) -> str:
        return f"vm_map of {self.name}"


class Vmspace:
    """struct vmspace: one process's address space."""

    __slots__ = ("vm_map", "vm_pmap", "vm_refcnt", "vm_taddr", "vm_daddr", "vm_tsize", "vm_dsize", "vm_ssize", "id")

    def __init__(self, vm_map: VmMap, pmap: Pmap, id: int) -> None:
        self.vm_map = vm_map
        self.vm_pmap = pmap
        self.vm_refcnt = 1
        self.vm_taddr = 0  # text start
        self.vm_daddr = 0  # data start: mmap's default placement starts above data + RLIMIT_DATA
        self.vm_tsize = 0  # pages
        self.vm_dsize = 0
        self.vm_ssize = 0
        self.id = id

    def __repr__(self) -> str:
        return f"vmspace {self.id}"

    def event_data(self) -> VmspaceRef:
        """What an exit event records of this vmspace when a kernel function returns it (sim/core/kfunc.py)."""
        return VmspaceRef(self.id)


def _record(map: VmMap, start: int, old: MapEntry | None, new: MapEntry | None, event: str = "") -> None:
    """A ("map", MapKey, old, new) delta (None: no entry), and, if `event` names one, a "mem" event with it."""
    log = pcpu.machine.log
    if log.recording:
        log.delta(("map", MapKey(map.name, start), old, new))
    if event:
        log.emit("mem", event, (new or old) if log.recording else None)


# -- looking up ------------------------------------------------------------------------------------------------------


def vm_map_lookup_entry(map: VmMap, address: int) -> VmMapEntry | None:
    """The entry containing address, or None. The last entry found is tried first (the map's hint)."""
    hint = map.hint
    if hint is not None and hint.start <= address < hint.end:
        return hint
    i = bisect.bisect_right(map.entries, address, key=_start) - 1
    if i >= 0:
        entry = map.entries[i]
        if address < entry.end:
            map.hint = entry
            return entry
    return None


def _start(entry: VmMapEntry) -> int:
    return entry.start


def _index(map: VmMap, entry: VmMapEntry) -> int:
    return bisect.bisect_left(map.entries, entry.start, key=_start)


def vm_map_entries_in(map: VmMap, start: int, end: int) -> list[VmMapEntry]:
    i = max(0, bisect.bisect_right(map.entries, start, key=_start) - 1)
    return [e for e in map.entries[i:] if e.start < end and e.end > start]


def vm_map_findspace(map: VmMap, start: int, length: int) -> int | None:
    """The lowest address >= start with `length` free bytes after it (vm_map_findspace), or None."""
    start = max(start, map.min_offset)
    for entry in vm_map_entries_in(map, start, map.max_offset):
        if entry.start >= start + length:
            break
        start = max(start, entry.end)
    if start + length > map.max_offset:
        return None
    return start


# -- making entries --------------------------------------------------------------------------------------------------


@kfunc
def vm_map_insert(
    map: VmMap, object: VmObject | None, offset: int, start: int, end: int, prot: int, maxprot: int, cow: int
) -> int:
    """Map [start, end) to object at offset; the range must be free (KERN_NO_SPACE otherwise)."""
    machine = pcpu.machine
    machine.charge(machine.profile.vm_map_op_ns)
    if start < map.min_offset or end > map.max_offset or start >= end:
        return KERN_INVALID_ADDRESS
    if vm_map_entries_in(map, start, end):
        return KERN_NO_SPACE
    if (prot & maxprot) != prot:
        return KERN_PROTECTION_FAILURE
    entry = VmMapEntry(start, end, object, offset, prot, maxprot)
    if cow & MAP_COPY_ON_WRITE:
        entry.eflags |= MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY
    if cow & MAP_INHERIT_SHARE:
        entry.inheritance = VM_INHERIT_SHARE
    if cow & MAP_STACK_GROWS_DOWN:
        entry.eflags |= MAP_ENTRY_GROWS_DOWN
    if cow & MAP_DISABLE_COREDUMP:
        entry.eflags |= MAP_ENTRY_NOCOREDUMP
    if object is not None and (object.ref_count > 1 or object.shadow_count):
        vm_object_clear_flag(object, OBJ_ONEMAPPING)
    map.entries.insert(bisect.bisect_left(map.entries, start, key=_start), entry)
    map.size += end - start
    map.timestamp += 1
    _record(map, start, None, entry.state(), "vm_map_insert")
    if cow & (MAP_PREFAULT | MAP_PREFAULT_PARTIAL):
        vm_map_pmap_enter(map, start, prot, object, OFF_TO_IDX(offset), end - start, cow & MAP_PREFAULT_PARTIAL)
    return KERN_SUCCESS


MAX_INIT_PT = 96  # pages a partial prefault maps at most


@kfunc
def vm_map_pmap_enter(map: VmMap, addr: int, prot: int, object, pindex: int, size: int, partial: int) -> None:
    """Map the object's resident, valid pages right away, read-only (pmap_enter_object): a mapping of a file
    in the page cache then takes no faults for reading."""
    from sim.vm.pmap import pmap_enter_quick
    from sim.vm.vm_page import PG_FICTITIOUS, VM_PAGE_BITS_ALL

    if not prot & (VM_PROT_READ | VM_PROT_EXECUTE) or object is None:
        return
    psize = min(atop(size), max(0, object.size - pindex))
    for tmpidx in range(psize):
        if partial and tmpidx >= MAX_INIT_PT:
            break
        m = object.memq.get(pindex + tmpidx)
        if m is not None and m.valid == VM_PAGE_BITS_ALL and not m.flags & PG_FICTITIOUS:
            pmap_enter_quick(map.pmap, addr + (tmpidx << 12), m, prot)


def pmap_align_superpage(offset: int, addr: int, size: int) -> int:
    """Move addr up so that it lines up with the object's offset modulo 2 MiB, when a superpage could fit."""
    superpage_offset = offset & PDRMASK
    if size - ((NBPDR - superpage_offset) & PDRMASK) < NBPDR:
        return addr
    if (addr & PDRMASK) == superpage_offset:
        return addr
    if (addr & PDRMASK) < superpage_offset:
        return (addr & ~PDRMASK) + superpage_offset
    return ((addr + PDRMASK) & ~PDRMASK) + superpage_offset


@kfunc
def vm_map_find(
    map: VmMap,
    object: VmObject | None,
    offset: int,
    addr: int,
    length: int,
    max_addr: int,
    find_space: int,
    prot: int,
    maxprot: int,
    cow: int,
) -> tuple[int, int]:
    """Map `length` bytes of object somewhere at or above addr (or exactly there, VMFS_NO_SPACE): (rv, address).

    FreeBSD 11 aligns only mappings of objects: VMFS_OPTIMAL_SPACE without one (anonymous memory, whose object is
    made at the first fault) becomes VMFS_ANY_SPACE, so an anonymous mmap lands at the first free address and
    jemalloc's chunk_alloc_mmap must unmap, map a larger region and trim to get its 2 MiB alignment.
    """
    if find_space == VMFS_OPTIMAL_SPACE and object is None:
        find_space = VMFS_ANY_SPACE
    start = addr
    while True:
        if find_space != VMFS_NO_SPACE:
            found = vm_map_findspace(map, start, length)
            if found is None or (max_addr and found + length > max_addr):
                return KERN_NO_SPACE, 0
            start = found
            if find_space in (VMFS_OPTIMAL_SPACE, VMFS_SUPER_SPACE):
                aligned = pmap_align_superpage(offset, start, length)
                if aligned != start:
                    if vm_map_findspace(map, aligned, length) != aligned:
                        start = aligned  # that spot is taken: look again from there
                        continue
                    start = aligned
        rv = vm_map_insert(map, object, offset, start, start + length, prot, maxprot, cow)
        return rv, start


# -- clipping and deleting ----------------------------------------------------------------------------------------


def _back_entry(entry: VmMapEntry) -> None:
    """Give an anonymous entry its object now, so that both halves of a clip share it."""
    if entry.object is None:
        entry.object = vm_object_allocate(OBJT_DEFAULT, atop(entry.end - entry.start))
        entry.offset = 0


def vm_map_clip_start(map: VmMap, entry: VmMapEntry, start: int) -> VmMapEntry:
    """Split entry at start (if inside it); returns the entry that now begins at start."""
    if not entry.start < start < entry.end:
        return entry
    _back_entry(entry)
    old = entry.state()
    front = entry.copy()
    front.end = start
    entry.offset += start - entry.start
    entry.start = start
    vm_object_reference(entry.object)
    map.entries.insert(_index(map, entry), front)
    _record(map, front.start, old, front.state(), "vm_map_clip_start")
    _record(map, entry.start, None, entry.state())
    return entry


def vm_map_clip_end(map: VmMap, entry: VmMapEntry, end: int) -> VmMapEntry:
    if not entry.start < end < entry.end:
        return entry
    _back_entry(entry)
    old = entry.state()
    back = entry.copy()
    back.start = end
    back.offset += end - entry.start
    entry.end = end
    vm_object_reference(entry.object)
    map.entries.insert(_index(map, entry) + 1, back)
    _record(map, entry.start, old, entry.state(), "vm_map_clip_end")
    _record(map, back.start, None, back.state())
    return entry


def _clipped(map: VmMap, start: int, end: int) -> list[VmMapEntry]:
    entries = vm_map_entries_in(map, start, end)
    if entries:
        vm_map_clip_start(map, entries[0], start)
        vm_map_clip_end(map, entries[-1], end)
    return vm_map_entries_in(map, start, end)


@kfunc
def vm_map_delete(map: VmMap, start: int, end: int) -> int:
    """Unmap [start, end): remove the pages from the pmap, then drop each entry's hold on its object."""
    machine = pcpu.machine
    for entry in _clipped(map, start, end):
        machine.charge(machine.profile.vm_map_op_ns)
        pmap_remove(map.pmap, entry.start, entry.end)
        vm_map_entry_delete(map, entry)
    map.timestamp += 1
    return KERN_SUCCESS


def vm_map_entry_delete(map: VmMap, entry: VmMapEntry) -> None:
    map.entries.remove(entry)
    if map.hint is entry:
        map.hint = None
    map.size -= entry.end - entry.start
    object = entry.object
    if object is not None:
        first = OFF_TO_IDX(entry.offset)
        if object.ref_count != 1 and object.flags & OBJ_ONEMAPPING and object.anonymous:
            # Only this entry's range of the object was mapped here: its pages can go now.
            vm_object_collapse(object)
            vm_object_page_remove(object, first, first + atop(entry.end - entry.start))
        vm_object_deallocate(object)
    _record(map, entry.start, entry.state(), None, "vm_map_entry_delete")


# -- protection and inheritance ---------------------------------------------------------------------------------


@kfunc
def vm_map_protect(map: VmMap, start: int, end: int, new_prot: int, set_max: bool) -> int:
    """Change the protection of [start, end); never beyond an entry's max_protection (KERN_PROTECTION_FAILURE)."""
    machine = pcpu.machine
    for entry in vm_map_entries_in(map, start, end):
        if (new_prot & entry.max_protection) != new_prot:
            return KERN_PROTECTION_FAILURE
    for entry in _clipped(map, start, end):
        machine.charge(machine.profile.vm_map_op_ns)
        old = entry.state()
        old_prot = entry.protection
        if set_max:
            entry.max_protection = new_prot
            entry.protection = new_prot & old_prot
        else:
            entry.protection = new_prot
        _record(map, entry.start, old, entry.state(), "vm_map_protect")
        if entry.protection != old_prot:
            # A COW entry is never writable in the pmap: its first write must fault to make the copy.
            mask = ~VM_PROT_WRITE if entry.eflags & MAP_ENTRY_COW else 0xFF
            pmap_protect(map.pmap, entry.start, entry.end, entry.protection & mask)
    map.timestamp += 1
    return KERN_SUCCESS


@kfunc
def vm_map_inherit(map: VmMap, start: int, end: int, new_inheritance: int) -> int:
    if new_inheritance not in (VM_INHERIT_SHARE, VM_INHERIT_COPY, VM_INHERIT_NONE):
        return KERN_INVALID_ARGUMENT
    for entry in _clipped(map, start, end):
        old = entry.state()
        entry.inheritance = new_inheritance
        _record(map, entry.start, old, entry.state(), "vm_map_inherit")
    return KERN_SUCCESS


# -- the fault's view ------------------------------------------------------------------------------------------


@kfunc
def vm_map_lookup(map: VmMap, vaddr: int, fault_type: int) -> tuple:
    """What a fault at vaddr should use: (rv, entry, object, pindex, prot, wired).

    A write to a NEEDS_COPY entry gives it its shadow object here; a read leaves the entry shared and takes
    write permission away, so that the first write still faults.
    """
    entry = vm_map_lookup_entry(map, vaddr)
    if entry is None:
        return KERN_INVALID_ADDRESS, None, None, 0, 0, False
    prot = entry.protection
    fault_typea = fault_type & ~VM_PROT_COPY
    if (fault_typea & prot) != fault_typea:
        return KERN_PROTECTION_FAILURE, entry, None, 0, 0, False
    if entry.eflags & MAP_ENTRY_NEEDS_COPY:
        if fault_type & (VM_PROT_WRITE | VM_PROT_COPY):
            old = entry.state()
            vm_object_shadow(entry)
            entry.eflags &= ~MAP_ENTRY_NEEDS_COPY
            _record(map, entry.start, old, entry.state())
        else:
            prot &= ~VM_PROT_WRITE
    if entry.object is None:
        old = entry.state()
        entry.object = vm_object_allocate(OBJT_DEFAULT, atop(entry.end - entry.start))
        entry.offset = 0
        _record(map, entry.start, old, entry.state())
    pindex = OFF_TO_IDX(vaddr - entry.start + entry.offset)
    return KERN_SUCCESS, entry, entry.object, pindex, prot, bool(entry.wired)


# -- address spaces ------------------------------------------------------------------------------------------------


@kfunc
def vmspace_alloc(min: int = VM_MIN_ADDRESS, max: int = VM_MAXUSER_ADDRESS, name: str = "") -> Vmspace:
    vm = pcpu.kernel.vm
    vm.next_vmspace_id += 1
    pmap = Pmap()
    pmap_pinit(pmap)
    space = Vmspace(VmMap(pmap, min, max, name or f"vmspace {vm.next_vmspace_id}"), pmap, vm.next_vmspace_id)
    pmap.pm_name = space.vm_map.name
    pmap.pm_map = space.vm_map
    return space


@kfunc
def vmspace_fork(vm1: Vmspace, name: str = "") -> Vmspace:
    """The child's address space at fork: each entry shared, copied (copy-on-write) or left out, as inherited.

    No page is copied here. Copied entries become COW | NEEDS_COPY in both maps, and the parent's writable pages
    are write-protected, so the first write on either side faults and makes its own copy.
    """
    old_map = vm1.vm_map
    vm2 = vmspace_alloc(old_map.min_offset, old_map.max_offset, name)
    for attr in ("vm_taddr", "vm_daddr", "vm_tsize", "vm_dsize", "vm_ssize"):
        setattr(vm2, attr, getattr(vm1, attr))
    new_map = vm2.vm_map
    machine = pcpu.machine
    for old_entry in list(old_map.entries):
        machine.charge(machine.profile.vm_map_op_ns)
        if old_entry.inheritance == VM_INHERIT_NONE:
            continue
        if old_entry.inheritance == VM_INHERIT_SHARE:
            # Both maps will use the very same object: it must exist, and be this entry's own.
            if old_entry.eflags & MAP_ENTRY_NEEDS_COPY:
                old = old_entry.state()
                vm_object_shadow(old_entry)
                old_entry.eflags &= ~MAP_ENTRY_NEEDS_COPY
                _record(old_map, old_entry.start, old, old_entry.state())
            _back_entry(old_entry)
            vm_object_reference(old_entry.object)
            vm_object_clear_flag(old_entry.object, OBJ_ONEMAPPING)
            new_entry = old_entry.copy()
            new_entry.eflags &= ~MAP_ENTRY_NEEDS_COPY
            _link(new_map, new_entry)
        else:
            new_entry = old_entry.copy()
            new_entry.wired = 0
            _link(new_map, new_entry)
            vm_map_copy_entry(old_map, new_map, old_entry, new_entry)
    return vm2


def _link(map: VmMap, entry: VmMapEntry) -> None:
    map.entries.insert(bisect.bisect_left(map.entries, entry.start, key=_start), entry)
    map.size += entry.end - entry.start
    _record(map, entry.start, None, entry.state(), "vm_map_entry_link")


@kfunc
def vm_map_copy_entry(src_map: VmMap, dst_map: VmMap, src_entry: VmMapEntry, dst_entry: VmMapEntry) -> None:
    """Share src_entry's object with dst_entry copy-on-write (vm_map_copy_entry)."""
    if not src_entry.eflags & MAP_ENTRY_NEEDS_COPY:
        # The parent's pages become read-only: its next write must fault too.
        pmap_protect(src_map.pmap, src_entry.start, src_entry.end, src_entry.protection & ~VM_PROT_WRITE)
    src_object = src_entry.object
    if src_object is not None:
        if src_object.anonymous:
            vm_object_collapse(src_object)
        vm_object_reference(src_object)
        vm_object_clear_flag(src_object, OBJ_ONEMAPPING)
        old = src_entry.state()
        dst_entry.object = src_object
        dst_entry.offset = src_entry.offset
        dst_entry.eflags |= MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY
        src_entry.eflags |= MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY
        _record(src_map, src_entry.start, old, src_entry.state())
        _record(dst_map, dst_entry.start, None, dst_entry.state())
    else:
        dst_entry.object = None
        dst_entry.offset = 0


@kfunc
def vmspace_free(vm: Vmspace) -> None:
    """Drop a reference; the last one tears the address space down."""
    vm.vm_refcnt -= 1
    if vm.vm_refcnt > 0:
        return
    map = vm.vm_map
    pmap_remove_pages(vm.vm_pmap)
    for entry in list(map.entries):
        vm_map_entry_delete(map, entry)
    pmap_release(vm.vm_pmap)


def vmspace_snapshot(vm: Vmspace) -> PageTables:
    return PageTables(cr3=vm.vm_pmap.pm_cr3, tables=pmap_snapshot(vm.vm_pmap))


class PageTables:
    """A copy of one address space's page-table pages (user half): enough to walk any address later."""

    __slots__ = ("cr3", "tables")

    def __init__(self, cr3: int, tables: dict[int, list[int]]) -> None:
        self.cr3 = cr3
        self.tables = tables

    def read_entry(self, pa: int) -> int:
        table = self.tables.get(pa >> 12)
        return table[(pa & 0xFFF) >> 3] if table is not None else 0


@kfunc
def vmspace_exit(td) -> None:
    """The exiting process lets go of its address space (its page tables are kept for `trapscope pagewalk`)."""
    p = td.td_proc
    vm = p.p_vmspace
    if vm is None:
        return
    kvm = pcpu.kernel.vm
    kvm.final_page_tables[p.p_pid] = vmspace_snapshot(vm)
    p.p_vmspace = None
    if pcpu.machine.cpu.regs["cr3"] == vm.vm_pmap.pm_cr3:
        # Run on the kernel's page tables while this address space is torn down (pmap_activate(vmspace0)).
        pcpu.machine.cpu.set("cr3", kvm.kernel_pmap.pm_cr3)
    vmspace_free(vm)
