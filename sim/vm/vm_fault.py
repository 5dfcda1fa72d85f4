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

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.machine.mmu import PG_A, PG_FRAME, PG_M, PG_MANAGED, PG_NX, PG_PS, PG_RW, PG_U, PG_V
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
from sim.vm.vm_object import OBJ_COLORED, OBJT_DEFAULT, OBJT_DEVICE, OBJT_PHYS, OBJT_VNODE, VmObject
from sim.vm.vm_page import (
    ACT_INIT,
    PG_FICTITIOUS,
    PG_ZERO,
    PGA_WRITEABLE,
    PQ_ACTIVE,
    VM_ALLOC_NORMAL,
    VM_ALLOC_SYSTEM,
    VM_ALLOC_ZERO,
    VM_PAGE_BITS_ALL,
    VmPage,
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
    MAP_ENTRY_NEEDS_COPY,
    OFF_TO_IDX,
    PAGE_SIZE,
    PFBAK,
    PFFOR,
    VM_MAXUSER_ADDRESS,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    atop,
    prot_text,
    trunc_page,
)
from sim.vm.vm_reserv import vm_object_color, vm_reserv_alloc_page

_ACCESS = {VM_PROT_WRITE: "write", VM_PROT_EXECUTE: "execute"}


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
        if machine.log.recording:
            why = (
                f"the entry allows only {prot_text(entry.protection)}"
                if rv == KERN_PROTECTION_FAILURE
                else "no map entry contains it"
            )
            machine.emit("fault", kind, f"{_ACCESS.get(fault_type, 'read')} at {vaddr:#x} fails: {why}")
        else:
            machine.emit("fault", kind)
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
        machine.emit(
            "fault",
            kind,
            f"{_ACCESS.get(fault_type, 'read')} at {vaddr:#x}: {_DESCRIPTION[kind]}; object {object.id} page "
            f"{pindex} is {m} mapped {prot_text(prot)}",
        )
    else:
        machine.emit("fault", kind)
    return KERN_SUCCESS


_DESCRIPTION = {
    "zero_fill": "no page anywhere in the object chain, so a zeroed one (demand-zero)",
    "cow": "copy-on-write: the page below in the chain is copied into this entry's own object",
    "soft": "the page is already resident, it only needed mapping",
    "hard": "the pager read the page in",
}


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


# -- fast-forward ----------------------------------------------------------------------------------------------


def quick_zero_fill_key(td, va: int, err: int) -> tuple | None:
    """If a user fault at va is a plain demand-zero fill that vm_fault_quick_zero_fill can reproduce, the
    situation that decides its path through the kernel (and so its cost and events); else None.

    Plain means: an anonymous object with no backing object, the page absent, its frame coming from an
    existing reservation that this page does not complete (no promotion), the page table already there,
    memory not short, and no pending AST or other per-thread work on the way back to user mode.
    """
    p = td.td_proc
    vm = p.p_vmspace
    if vm is None or err & 1 or va >= VM_MAXUSER_ADDRESS or td.td_flags or td.td_siglist or p.p_siglist:
        return None
    map = vm.vm_map
    entry = map.hint  # vm_map_lookup_entry's first try, inline: a run of faults stays in one entry
    if entry is None or not entry.start <= va < entry.end:
        entry = vm_map_lookup_entry(map, va)
    if entry is None or entry.wired or entry.eflags & MAP_ENTRY_NEEDS_COPY:
        return None
    access = VM_PROT_WRITE if err & 2 else VM_PROT_READ
    if err & 0x10 or not entry.protection & access:
        return None
    object = entry.object
    if object is None or object.type != OBJT_DEFAULT or object.backing_object is not None:
        return None
    pindex = (va - entry.start + entry.offset) >> 12
    if pindex in object.memq or pindex in object.swblk:
        return None
    kvm = pcpu.kernel.vm
    # Where the frame will come from decides the path: a reservation's page is not known to be zero; a single
    # free page may be (PG_ZERO: no pagezero, v_ozfod); a page completing a reservation promotes (slow path).
    index = (pindex + object.pg_color) & 511
    first = pindex - index
    rv = object.rvq.get(first) if object.flags & OBJ_COLORED else None
    if rv is not None:
        if rv.popmap >> index & 1 or rv.popcnt >= 511 or not kvm.superpages_enabled:
            return None
        prezeroed = False
    elif kvm.superpages_enabled and 0 <= first and first + 512 <= object.size and kvm.phys.free_blocks:
        prezeroed = False
    elif kvm.phys.free_zero:
        prezeroed = True
    elif kvm.phys.free_dirty or kvm.phys.free_blocks:
        prezeroed = False
    else:
        return None
    pt = _page_table(map.pmap, va)
    if pt is None:
        return None  # the page table must be there already: allocating one takes a longer path
    if kvm.phys.free_count + kvm.v_reserved_free <= kvm.v_free_reserved + 1 or td.td_priority != td.td_user_pri:
        return None  # (the first test is kvm.free_count() <= ..., inline)
    key = (access, prezeroed, entry.protection, td.td_pflags, td.td_pcb.pcb_flags, p.p_flag,
           p.p_throttled, p.p_traceflag)  # fmt: skip
    return key, (map, entry, object, pindex, pt, rv, index)


def _page_table(pmap, va: int) -> tuple[list[int], int] | None:
    """The PT page (as entries, and its physical address) that holds va's PTE, if it exists."""
    machine = pcpu.machine
    frames = machine.physmem.frames
    mmu = machine.mmu
    if mmu.regs["cr3"] == pmap.pm_cr3 == mmu.loaded_cr3:
        cached = mmu.pde_cache.get(va >> 21)  # the walk that faulted just used this PDE
        if cached is not None:
            table = frames.get((cached & PG_FRAME) >> 12)
            if type(table) is list:
                return table, cached & PG_FRAME
    table = frames.get(pmap.pm_pml4 >> 12)
    for shift in (39, 30, 21):
        if type(table) is not list:
            return None
        entry = table[(va >> shift) & 0x1FF]
        if not entry & PG_V or entry & PG_PS:
            return None
        table = frames.get((entry & PG_FRAME) >> 12)
    return (table, entry & PG_FRAME) if type(table) is list else None


def vm_fault_quick_zero_fill(td, va: int, err: int, context: tuple, usermode: bool = True) -> None:
    """What vm_fault's zero-fill path does to the VM state, without the steps' events: the page from the
    reservation, zeroed, entered writable (or not) in the pmap, activated and counted. `context` is what
    quick_zero_fill_key found; `usermode` is the mode the fault was taken in (kernel: copyout's faults)."""
    kvm = pcpu.kernel.vm
    cnt = kvm.cnt
    map, entry, object, pindex, (pt, pt_pa), rv, index = context
    pmap = map.pmap
    va &= ~0xFFF
    cnt.v_trap += 1
    cnt.v_vm_faults += 1
    if rv is not None:  # vm_reserv_alloc_page from the existing reservation
        rv.popmap |= 1 << index
        rv.popcnt += 1
        kvm.v_reserved_free -= 1
        pfn = rv.pfn + index
        prezeroed = False
    else:
        vm_object_color(object, atop(va) - pindex)
        reserved = vm_reserv_alloc_page(object, pindex)
        if reserved is not None:
            pfn, rv = reserved
            prezeroed = False
        else:
            pfn, prezeroed = kvm.phys.alloc_page(True)
    m = kvm.page_array.get(pfn)
    if m is None:
        m = kvm.page_array[pfn] = VmPage(pfn << 12)
    m.reserv = rv
    m.flags = m.oflags = m.aflags = m.dirty = m.wire_count = 0
    m.object = object  # vm_page_insert
    m.pindex = pindex
    object.memq[pindex] = m
    object.resident_page_count += 1
    if prezeroed:
        cnt.v_ozfod += 1
    else:
        pcpu.machine.physmem.frames.pop(pfn, None)  # pagezero
        cnt.v_pagezero += 1
    cnt.v_zfod += 1
    m.valid = VM_PAGE_BITS_ALL
    prot = entry.protection
    pte = m.phys_addr | PG_V | PG_A | PG_U | PG_MANAGED
    if prot & VM_PROT_WRITE:
        pte |= PG_RW
        m.aflags = PGA_WRITEABLE
    if not prot & VM_PROT_EXECUTE:
        pte |= PG_NX
    if err & 2:
        m.dirty = VM_PAGE_BITS_ALL
        pte |= PG_M
    pt[(va >> 12) & 0x1FF] = pte
    kvm.page_array[pt_pa >> 12].wire_count += 1  # the PT page holds one more valid entry
    pmap.pm_resident += 1
    m.pv.append((pmap, va))
    m.queue = PQ_ACTIVE  # vm_page_activate
    m.act_count = ACT_INIT
    kvm.queues[PQ_ACTIVE].pages[m] = None
    (cnt.faults_user if usermode else cnt.faults_kernel)["zero_fill"] += 1
