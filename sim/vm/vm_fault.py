"""Page faults (sys/vm/vm_fault.c, FreeBSD 11): find or make the page a virtual address should show, and map it.

vm_fault() looks the address up in the map (vm_map_lookup, which makes the shadow object a COW write needs), then
walks the entry's object chain for the page:
  - resident and valid in the first object: a *soft* fault, just map it (and prefault resident neighbours);
  - the object's pager has it (a file, swap): a *hard* fault, read it in (v_io_faults, ru_majflt);
  - resident in a backing object: on a read, map it read-only (soft); on a write, *copy-on-write*: copy it into
    the first object (v_cow_faults), or move it up if nobody else can see the backing object (v_cow_optim);
  - nowhere: *zero-fill* a page in the first object (v_zfod), with pagezero unless the page was PG_ZERO already
    (v_ozfod).
An access the entry does not allow is a protection failure, an address no entry maps an invalid address: the
caller (trap_pfault) turns either into SIGSEGV for user mode, or EFAULT through pcb_onfault for copyin/copyout.
"""

from __future__ import annotations

from sim.core.events import FaultFailed, FaultResolved
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.vm.pmap import (
    PMAP_ENTER_WIRED,
    pmap_copy_page,
    pmap_enter,
    pmap_enter_quick,
    pmap_is_prefaultable,
    pmap_zero_page,
)
from sim.vm.pmap import pmap_remove as _pmap_remove
from sim.vm.vm_map import VmMap, vm_map_lookup, vm_map_lookup_entry
from sim.vm.vm_meter import vminfo_probes
from sim.vm.vm_object import OBJT_DEFAULT, OBJT_DEVICE, OBJT_PHYS, OBJT_VNODE, VmObject
from sim.vm.vm_page import (
    PG_FICTITIOUS,
    PG_ZERO,
    VM_ALLOC_NORMAL,
    VM_ALLOC_SYSTEM,
    VM_ALLOC_ZERO,
    VM_PAGE_BITS_ALL,
    vm_page_activate,
    vm_page_alloc,
    vm_page_free,
    vm_page_rename,
)
from sim.vm.vm_pager import VM_PAGER_OK, dev_pager_getfake, vm_pager_get_pages, vm_pager_has_page
from sim.vm.vm_param import (
    KERN_FAILURE,
    KERN_PROTECTION_FAILURE,
    KERN_SUCCESS,
    OFF_TO_IDX,
    PAGE_SIZE,
    PFBAK,
    PFFOR,
    VM_PROT_WRITE,
    atop,
    trunc_page,
)
from sim.vm.vm_reserv import vm_object_color


@kfunc
def vm_fault(map: VmMap, vaddr: int, fault_type: int, fault_flags: int = 0) -> int:
    machine, vm = pcpu.machine, pcpu.kernel.vm
    cnt = vm.cnt
    cnt.v_vm_faults += 1
    machine.charge(machine.profile.vm_fault_ns)
    vaddr = trunc_page(vaddr)
    rv, entry, first_object, first_pindex, prot, wired = vm_map_lookup(map, vaddr, fault_type)
    if rv != KERN_SUCCESS:
        kind = "protection" if rv == KERN_PROTECTION_FAILURE else "unmapped"
        cnt.count_fault(kind)
        sdt_fire("vminfo", vminfo_probes(kind, not cnt.fault_usermode))
        allowed = entry.protection if rv == KERN_PROTECTION_FAILURE else None
        machine.emit("fault", kind, FaultFailed(fault_type, vaddr, allowed) if machine.log.recording else None)
        return rv
    vm_object_color(first_object, atop(vaddr) - first_pindex)

    object, pindex = first_object, first_pindex
    first_m = None
    hardfault = False
    kind = ""
    while True:
        m = object.memq.get(pindex)
        if m is not None and m.valid:
            break  # resident
        if object.type in (OBJT_DEVICE, OBJT_PHYS) and object.d_mmap is not None:
            m = dev_pager_getfake(object, pindex)
            hardfault = True
            break
        if m is None and (object.type != OBJT_DEFAULT or object is first_object):
            # The pager might have the page, or this is the top object: a page to fill either way.
            # A process the OOM killer chose may dig into the reserve, so that it can run to its death.
            alloc_req = VM_ALLOC_SYSTEM if pcpu.curthread.td_proc in vm.oom_killed else VM_ALLOC_NORMAL
            if object.type != OBJT_VNODE and object.backing_object is None:
                alloc_req |= VM_ALLOC_ZERO
            m = vm_page_alloc(object, pindex, alloc_req)
            while m is None:
                from sim.vm.vm_pageout import vm_wait

                vm_wait()
                m = object.memq.get(pindex) or vm_page_alloc(object, pindex, alloc_req)
        if object.type != OBJT_DEFAULT and vm_pager_has_page(object, pindex):
            if vm_pager_get_pages(object, m) == VM_PAGER_OK:
                m.valid = VM_PAGE_BITS_ALL
                hardfault = True
                break
            vm_page_free(m)
            return KERN_FAILURE
        if object is first_object:
            first_m = m
        elif m is not None:
            vm_page_free(m)
        next_object = object.backing_object
        if next_object is None:
            # The end of the chain: the page is zero, in the top object.
            object, pindex, m = first_object, first_pindex, first_m
            first_m = None
            if not m.flags & PG_ZERO:
                pmap_zero_page(m)
            else:
                cnt.v_ozfod += 1
            m.flags &= ~PG_ZERO
            cnt.v_zfod += 1
            m.valid = VM_PAGE_BITS_ALL
            kind = "zero_fill"
            break
        pindex += OFF_TO_IDX(object.backing_object_offset)
        object = next_object

    if object is not first_object:
        if fault_type & VM_PROT_WRITE:
            m = vm_fault_cow(map, vaddr, first_object, first_pindex, first_m, object, m)
            first_m = None
            object = first_object
            kind = "cow"
        else:
            prot &= ~VM_PROT_WRITE  # map the shared page read-only: a write must still fault
    if first_m is not None:
        vm_page_free(first_m)  # allocated at the top in case, not needed
    if not kind:
        kind = "hard" if hardfault else "soft"
    if fault_type & VM_PROT_WRITE:
        m.dirty = VM_PAGE_BITS_ALL
    pmap_enter(map.pmap, vaddr, m, prot, fault_type | (PMAP_ENTER_WIRED if wired else 0), 0)
    if kind == "soft" and not wired:
        vm_fault_prefault(map, entry, vaddr)
    vm_page_activate(m)
    if hardfault:
        cnt.v_io_faults += 1
    cnt.count_fault(kind)
    sdt_fire("vminfo", vminfo_probes(kind, not cnt.fault_usermode))
    if machine.log.recording:
        machine.emit("fault", kind, FaultResolved(kind, fault_type, vaddr, object.id, pindex, m.phys_addr, prot))
    else:
        machine.emit("fault", kind)
    return KERN_SUCCESS


@kfunc
def vm_fault_cow(map: VmMap, vaddr: int, first_object: VmObject, first_pindex: int, first_m, object, m):
    """A write found the page in a backing object: give the first object its own copy (inline in FreeBSD 11)."""
    cnt = pcpu.kernel.vm.cnt
    if (
        object.shadow_count == 1
        and object.ref_count == 1
        and object.anonymous
        and object is first_object.backing_object
    ):
        # Nobody else can see the backing object: move the page up instead of copying it.
        vm_page_free(first_m)
        vm_page_rename(m, first_object, first_pindex)
        cnt.v_cow_optim += 1
        new_m = m
    else:
        pmap_copy_page(m, first_m)
        first_m.valid = VM_PAGE_BITS_ALL
        new_m = first_m
        # Other maps sharing the first object (minherit INHERIT_SHARE) may map the old page read-only here:
        # they must fault again and find the copy. (Later FreeBSD does this with pmap_remove_all.)
        for pmap, va in list(m.pv):
            if pmap is map.pmap and va == vaddr:
                continue
            other = pmap.pm_map
            entry = vm_map_lookup_entry(other, va) if other is not None else None
            if entry is not None and entry.object is first_object:
                _pmap_remove(pmap, va, va + PAGE_SIZE)
    cnt.v_cow_faults += 1
    return new_m


@kfunc
def vm_fault_prefault(map: VmMap, entry, addra: int) -> None:
    """Map up to PFBAK pages behind and PFFOR ahead that are already resident: likely the next faults."""
    pmap = map.pmap
    starta = max(addra - PFBAK * PAGE_SIZE, entry.start)
    for i in range(1, max(PFBAK, PFFOR) + 1):
        for addr in (addra - i * PAGE_SIZE, addra + i * PAGE_SIZE):
            if addr < starta or addr > addra + PFFOR * PAGE_SIZE or addr >= entry.end:
                continue
            if not pmap_is_prefaultable(pmap, addr):
                continue
            pindex = OFF_TO_IDX(addr - entry.start + entry.offset)
            lobject = entry.object
            m = lobject.memq.get(pindex)
            while m is None and lobject.type == OBJT_DEFAULT and lobject.backing_object is not None:
                pindex += OFF_TO_IDX(lobject.backing_object_offset)
                lobject = lobject.backing_object
                m = lobject.memq.get(pindex)
            if m is None:
                return
            if m.valid == VM_PAGE_BITS_ALL and not m.flags & PG_FICTITIOUS:
                pmap_enter_quick(pmap, addr, m, entry.protection)
