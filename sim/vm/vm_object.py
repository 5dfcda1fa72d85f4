"""VM objects (sys/vm/vm_object.c): what a mapping maps. An object caches pages of something: anonymous memory
(OBJT_DEFAULT, which becomes OBJT_SWAP once a page has been swapped out), a file (OBJT_VNODE), a device's memory
(OBJT_DEVICE) or pinned physical pages (OBJT_PHYS, the shared page).

Copy-on-write is built from *shadow objects*: after fork both processes' entries point at the same object and are
marked NEEDS_COPY; the first write through either gives that entry a new, empty object whose backing_object is
the shared one. A fault then looks in the shadow first and follows the backing_object chain; a page found below
is copied up (or, if nobody else can see the object below, moved up). When a shadow is the last user of the
object it shadows, vm_object_collapse() merges the two, so chains do not grow without bound.

Deltas: ("object", id, old ObjectState or None, new ObjectState).
"""

from __future__ import annotations

from sim.core.events import ObjectCollapsed, ObjectRef, ObjectShadowed, ObjectState
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.vm.vm_param import OFF_TO_IDX

# enum obj_type (vm/vm.h, FreeBSD 11)
OBJT_DEFAULT = 0
OBJT_SWAP = 1
OBJT_VNODE = 2
OBJT_DEVICE = 3
OBJT_PHYS = 4
OBJT_DEAD = 5
OBJT_NAMES = {0: "OBJT_DEFAULT", 1: "OBJT_SWAP", 2: "OBJT_VNODE", 3: "OBJT_DEVICE", 4: "OBJT_PHYS", 5: "OBJT_DEAD"}

# object->flags (vm/vm_object.h)
OBJ_FICTITIOUS = 0x0001  # (device) its pages are not RAM the VM system owns
OBJ_UNMANAGED = 0x0002
OBJ_DEAD = 0x0008
OBJ_NOSPLIT = 0x0010
OBJ_MIGHTBEDIRTY = 0x0100
OBJ_COLORED = 0x1000  # pg_color is set (superpage reservations)
OBJ_ONEMAPPING = 0x2000  # one map entry maps it: unmapping a range may free its pages


class VmObject:
    __slots__ = (
        "id",
        "type",
        "size",
        "memq",
        "resident_page_count",
        "ref_count",
        "shadow_count",
        "shadows",
        "backing_object",
        "backing_object_offset",
        "flags",
        "handle",
        "pg_color",
        "rvq",
        "swblk",
        "d_mmap",
    )

    def __init__(self, id: int, type: int, size: int) -> None:
        self.id = id
        self.type = type
        self.size = size  # in pages
        self.memq: dict[int, object] = {}  # pindex -> vm_page: the resident pages
        self.resident_page_count = 0
        self.ref_count = 1
        self.shadow_count = 0
        self.shadows: list[VmObject] = []  # objects whose backing_object this is
        self.backing_object: VmObject | None = None
        self.backing_object_offset = 0  # bytes
        self.flags = 0
        self.handle = None  # the vnode of an OBJT_VNODE object
        self.pg_color = 0
        self.rvq: dict[int, object] = {}  # first pindex of a superpage range -> its reservation
        self.swblk: dict[int, object] = {}  # pindex -> the content of a page swapped out (swap_pager)
        self.d_mmap = None  # OBJT_DEVICE/OBJT_PHYS: pindex -> physical address of the device's page

    @property
    def anonymous(self) -> bool:
        return self.handle is None and self.type in (OBJT_DEFAULT, OBJT_SWAP)

    def state(self) -> ObjectState:
        """What the event log records of this object (the value of its ("object", ...) deltas)."""
        path = getattr(self.handle, "v_path", "vnode") if self.handle is not None else None
        backing = self.backing_object.id if self.backing_object is not None else None
        return ObjectState(self.id, self.type, self.size, self.resident_page_count, self.ref_count, path, backing)

    def __repr__(self) -> str:
        return f"object {self.id}"

    def event_data(self) -> ObjectRef:
        """What an exit event records of this object when a kernel function returns it (sim/core/kfunc.py)."""
        return ObjectRef(self.id)


def _record(object: VmObject, old: ObjectState | None) -> None:
    log = pcpu.machine.log
    if log.recording:
        log.delta(("object", object.id, old, object.state()))


@kfunc
def vm_object_allocate(type: int, size: int) -> VmObject:
    machine, vm = pcpu.machine, pcpu.kernel.vm
    machine.charge(machine.profile.vm_object_op_ns)
    vm.next_object_id += 1
    object = VmObject(vm.next_object_id, type, size)
    if type == OBJT_DEFAULT:
        object.flags = OBJ_ONEMAPPING
    _record(object, None)
    return object


def vm_object_reference(object: VmObject | None) -> None:
    if object is not None:
        old = object.state() if pcpu.machine.log.recording else None
        object.ref_count += 1
        _record(object, old)  # the VM view shows who shares an object (after fork: both maps' entries)


def vm_object_clear_flag(object: VmObject, bits: int) -> None:
    object.flags &= ~bits


@kfunc
def vm_object_shadow(entry) -> None:
    """Give a map entry a new, empty object in front of its current one (vm_object_shadow(&entry->object, ...)).

    The entry's reference to the old object becomes the shadow's. If nobody else uses the old object there is
    nothing to protect, and no shadow is made.
    """
    source = entry.object
    if source is not None and source.ref_count == 1 and source.anonymous:
        return
    machine = pcpu.machine
    length = OFF_TO_IDX(entry.end - entry.start)
    result = vm_object_allocate(OBJT_DEFAULT, length)
    old = result.state() if machine.log.recording else None
    result.backing_object = source
    if source is not None:
        result.backing_object_offset = entry.offset
        source.shadows.append(result)
        source.shadow_count += 1
        # The new object's pages line up with the old one's superpages.
        if source.flags & OBJ_COLORED:
            result.pg_color = (source.pg_color + OFF_TO_IDX(entry.offset)) & 511
            result.flags |= OBJ_COLORED
    entry.object = result
    entry.offset = 0
    _record(result, old)  # the shadow chain, as the VM view draws it
    below = source.id if source is not None else None
    machine.emit(
        "mem", "vm_object_shadow", ObjectShadowed(result.id, below, entry.state()) if machine.log.recording else None
    )


@kfunc
def vm_object_deallocate(object: VmObject | None) -> None:
    """Drop a reference; the last one frees the object, and a shadow left as its backer's only user collapses."""
    while object is not None:
        old = object.state() if pcpu.machine.log.recording else None
        object.ref_count -= 1
        if object.type == OBJT_VNODE:
            _record(object, old)
            return  # a file's pages stay cached with its vnode: the page cache
        if object.ref_count == 1 and object.shadow_count == 1 and object.anonymous:
            # Only its one shadow refers to it now: fold it into that shadow.
            _record(object, old)
            vm_object_collapse(object.shadows[0])
            return
        if object.ref_count > 0:
            _record(object, old)
            return
        backing = object.backing_object
        vm_object_terminate(object)
        object = backing  # the reference the dead object held on its backer goes too


@kfunc
def vm_object_terminate(object: VmObject) -> None:
    """Free every page of an object nobody references any more."""
    from sim.vm.pmap import pmap_remove_all
    from sim.vm.vm_page import PG_FICTITIOUS, vm_page_free_many

    machine = pcpu.machine
    machine.charge(machine.profile.vm_object_op_ns)
    old = object.state() if machine.log.recording else None
    object.flags |= OBJ_DEAD
    doomed = []
    for m in list(object.memq.values()):
        if m.pv:
            pmap_remove_all(m)
        if m.flags & PG_FICTITIOUS:
            del object.memq[m.pindex]
            object.resident_page_count -= 1
            m.object = None
        else:
            doomed.append(m)
    vm_page_free_many(doomed)
    object.swblk.clear()
    backing = object.backing_object
    if backing is not None:
        backing.shadows.remove(object)
        backing.shadow_count -= 1
        object.backing_object = None
    object.type = OBJT_DEAD
    _record(object, old)


@kfunc
def vm_object_collapse(object: VmObject) -> None:
    """Merge into `object` every backing object that only `object` uses, moving up the pages it lacks."""
    from sim.vm.pmap import pmap_remove_all
    from sim.vm.vm_page import vm_page_free, vm_page_rename

    machine = pcpu.machine
    while True:
        backing = object.backing_object
        if backing is None or not backing.anonymous or not object.anonymous or backing.ref_count != 1:
            return
        machine.charge(machine.profile.vm_object_op_ns)
        old = object.state() if machine.log.recording else None
        offset = OFF_TO_IDX(object.backing_object_offset)
        for m in list(backing.memq.values()):
            new_pindex = m.pindex - offset
            if new_pindex < 0 or new_pindex >= object.size or new_pindex in object.memq or new_pindex in object.swblk:
                # The shadow has its own copy (or the page is outside what it maps): the old one is garbage.
                if m.pv:
                    pmap_remove_all(m)
                vm_page_free(m)
            else:
                vm_page_rename(m, object, new_pindex)
        for pindex, content in backing.swblk.items():
            new_pindex = pindex - offset
            if 0 <= new_pindex < object.size and new_pindex not in object.memq and new_pindex not in object.swblk:
                object.swblk[new_pindex] = content
        if object.swblk:
            object.type = OBJT_SWAP
        backing.swblk.clear()
        # object takes over backing's place in the chain
        below = backing.backing_object
        backing.shadows.remove(object)
        backing.shadow_count -= 1
        if below is not None:
            below.shadows.remove(backing)
            below.shadows.append(object)
            object.backing_object_offset += backing.backing_object_offset
        object.backing_object = below
        backing.backing_object = None
        backing.ref_count = 0
        backing.flags |= OBJ_DEAD
        backing.type = OBJT_DEAD
        _record(object, old)
        machine.emit("mem", "vm_object_collapse", ObjectCollapsed(backing.id, object.id))


@kfunc
def vm_object_page_remove(object: VmObject, start: int, end: int) -> None:
    """Free the pages with start <= pindex < end (end 0: to the end), unmapping them first."""
    from sim.vm.pmap import pmap_remove_all
    from sim.vm.vm_page import PG_FICTITIOUS, vm_page_free

    if end == 0:
        end = object.size
    for pindex in [p for p in object.memq if start <= p < end]:
        m = object.memq[pindex]
        if m.pv:
            pmap_remove_all(m)
        if m.flags & PG_FICTITIOUS:
            del object.memq[pindex]
            object.resident_page_count -= 1
            m.object = None
        else:
            vm_page_free(m)
    for pindex in [p for p in object.swblk if start <= p < end]:
        del object.swblk[pindex]


def vm_object_lookup_page(object: VmObject, pindex: int):
    """The page the chain starting at `object` shows at `pindex`, and the object holding it (or None, None)."""
    while object is not None:
        m = object.memq.get(pindex)
        if m is not None and m.valid:
            return m, object
        if pindex in object.swblk:
            return None, object
        pindex += OFF_TO_IDX(object.backing_object_offset)
        object = object.backing_object
    return None, None
