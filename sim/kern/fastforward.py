"""Fast-forward for page faults: what the kernel does for a demand-zero fault when nobody is watching.

Not part of the kernel a student reads (that is trap_pfault.py, vm_fault.py, pmap.py): past a run's record
budget nothing is recorded, and a program that touches gigabytes (dd bs=1g junk-filling its buffer) takes
hundreds of thousands of faults that all go the same way through the kernel. The first of each kind is taken
the full way and measured (its time in each ring, its events); the others are replayed: the same state changes
(the page from the reservation, zeroed, entered in the pmap, activated and counted), the measured time, and the
measured number of events, counted rather than made. tests/sim/test_fast_forward.py holds this to exactness: a
run fast-forwarded ends exactly as the same run fully recorded.

The entry points, called only with recording off:
  - user_fault_unrecorded / not_present_fault_unrecorded: a user-mode #PF (trap_pfault.user_fault, umem);
  - kernel_fault_unrecorded: a copy routine's #PF (trap_pfault.kernel_fault);
  - memset_pages_unrecorded: a user-mode memset over whole pages, its TLB misses and faults fused in one loop
    (umem.memset).
The names say "unrecorded" or "replay" so that none is mistaken for a FreeBSD function. The MMU's own
fast-forward (its walk) is sim/machine/fastforward.py.
"""

from __future__ import annotations

from sim.core.log import EventBudgetExceeded
from sim.core.pcpu import pcpu
from sim.kern.exception import KUCSEL, KUDSEL
from sim.kern.proc import PCB_FULL_IRET
from sim.kern.trap_pfault import (
    _SAVED_FIELDS,
    T_PAGEFLT,
    _kernel_fault,
    _saved_in_frame,
    _saved_values,
    _user_fault,
)
from sim.machine.cpu import KERNEL_CPL, USER_CPL
from sim.machine.fastforward import zero_then_store_unrecorded
from sim.machine.mmu import (
    PG_A,
    PG_FRAME,
    PG_G,
    PG_M,
    PG_MANAGED,
    PG_NX,
    PG_PS,
    PG_RW,
    PG_U,
    PG_V,
    PGEX_I,
    PGEX_P,
    PGEX_RSV,
    PGEX_U,
    PGEX_W,
    PageFault,
)
from sim.vm.vm_map import vm_map_lookup_entry
from sim.vm.vm_object import OBJ_COLORED, OBJT_DEFAULT
from sim.vm.vm_page import ACT_INIT, PGA_WRITEABLE, PQ_ACTIVE, VM_PAGE_BITS_ALL, VmPage
from sim.vm.vm_param import MAP_ENTRY_NEEDS_COPY, VM_MAXUSER_ADDRESS, VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE, atop
from sim.vm.vm_reserv import vm_object_color, vm_reserv_alloc_page

# -- user-mode faults ----------------------------------------------------------------------------------------


def user_fault_unrecorded(va: int, err: int, fault: PageFault | None) -> bool:
    """Take a user page fault (recording off) by replaying one like it, or the full way while measuring it for
    later replays; False if it is not a fault the replay covers (the caller takes the full path)."""
    td = pcpu.curthread
    found = zero_fill_replay_key(td, va, err)
    if found is None:
        return False
    key, context = found
    replay = pcpu.kernel.vm.fault_replays.get(key)
    if replay is not None:
        _replay_fault(td, va, err, replay, context)
    else:
        _measure_fault(td, fault if fault is not None else PageFault(va, err, "PTE not present"), key)
    return True


def memset_pages_unrecorded(va: int, end: int, byte: int) -> int:
    """Fast-forward of a user-mode memset over the whole pages of [va, end) with recording off: for each page,
    what the CPU's store, the MMU and (for a page not yet there) the replayed #PF do, fused in one loop, with the
    same state changes, time and event counts as umem.memset page by page. Returns where it stopped: `end`, or
    the first page it leaves to the general path (anything but a TLB hit, a present PTE under a cached PDE, or a
    demand-zero fault that user_fault_unrecorded would replay from the region's reservation); it changes nothing for
    that page. The store's time is the cache model's, page by page (sim/machine/memhier.py)."""
    machine = pcpu.machine
    log, mmu = machine.log, machine.mmu
    if log.recording or mmu.regs["cr3"] != mmu.loaded_cr3:
        return va
    td = pcpu.curthread
    kvm = pcpu.kernel.vm
    frames = machine.physmem.frames
    store_ps = machine.caches.store_ps
    tlb, tlb_large, pde_cache = mmu.tlb, mmu.tlb_large, mmu.pde_cache
    tlb_entries, level_ns = mmu.tlb_entries, mmu.level_ns
    access = PGEX_W | PGEX_U  # a user write: allowed if the entry has PG_U and PG_RW (Mmu._allowed)
    region = -1  # the 2 MiB region `run` was made for
    run = None
    while va < end:
        vpn = va >> 12
        cached = tlb.get(vpn)
        if cached is not None:  # Mmu.translate's TLB hit
            if not (cached & PG_U and cached & PG_RW and cached & PG_M):
                return va
            mmu.hits += 1
            pfn = (cached & PG_FRAME) >> 12
        else:
            if tlb_large.get(va >> 21) is not None:
                return va
            pde = pde_cache.get(va >> 21)
            if pde is None:
                return va
            pt = frames.get((pde & PG_FRAME) >> 12)
            if type(pt) is not list:
                return va
            i1 = vpn & 0x1FF
            if not pt[i1] & PG_V:
                # #PF, page not present: replayed if the region's faults are plain zero fills (zero_fill_replay_key
                # for the region's first one; for the rest, what that key depends on and can change page to page).
                if va >> 21 != region:
                    run = _zero_fill_run(td, va, access)
                    if run is None:
                        return va  # (tried again at the next page: the general path may make it replayable)
                    region = va >> 21
                if run[4][0] is pt and pde & PG_RW and pde & PG_U:
                    done = _zero_fill_pages(machine, kvm, td, va, end, byte, run)
                    if done != va:
                        va = done
                        continue
                replay, map, entry, object, pt_and_pa, rv, key_end = run
                pindex = (va - entry.start + entry.offset) >> 12
                index = vpn & 0x1FF  # (pindex + pg_color) & 511: the object is coloured to match the region
                if (
                    va >= key_end
                    or pindex in object.memq
                    or pindex in object.swblk
                    or rv.popmap >> index & 1
                    or rv.popcnt >= 511
                    or kvm.phys.free_count + kvm.v_reserved_free <= kvm.v_free_reserved + 1
                ):
                    return va
                # The walk that faulted (walk_unrecorded: the PDE cache, then the PTE), then the fault.
                mmu.misses += 1
                mmu.walks += 1
                log.now += level_ns
                log.unrecorded += 3
                _replay_fault(td, va, access, replay, (map, entry, object, pindex, pt_and_pa, rv, index))
            e1 = pt[i1]
            eff = (pde & e1 & (PG_RW | PG_U)) | ((pde | e1) & PG_NX) | (e1 & (PG_G | PG_M))
            if not (eff & PG_U and eff & PG_RW):
                return va  # (only a page that was present already can get here: nothing was changed for it)
            # The walk (again, after a fault), then the TLB fill (walk_unrecorded's success path).
            mmu.misses += 1
            mmu.walks += 1
            log.now += level_ns
            if not e1 & PG_A:
                pt[i1] = e1 = e1 | PG_A
            if not e1 & PG_M:
                pt[i1] = e1 = e1 | PG_M
                eff |= PG_M
            log.unrecorded += 4
            if len(tlb) >= tlb_entries:
                del tlb[next(iter(tlb))]
            tlb[vpn] = (e1 & PG_FRAME) | eff
            pfn = (e1 & PG_FRAME) >> 12
        # The store: the whole frame becomes `byte` (PhysMem.fill_frame), one "user" event.
        if byte:
            frames[pfn] = byte
        else:
            frames.pop(pfn, None)
        log.now += store_ps(pfn << 12, 4096) // 1000
        log.unrecorded += 1
        if log.unrecorded + log.record_budget > log.event_budget:
            raise EventBudgetExceeded(log.event_budget)
        va += 4096
    return va


def _zero_fill_pages(machine, kvm, td, va: int, end: int, byte: int, run: tuple) -> int:
    """memset_pages_unrecorded's pages from va on (below end, in va's region) while each is what the loop would
    replay from run's reservation: a TLB miss, a PTE not present, the demand-zero fault, the walk again, the TLB
    fill and the store. The same state changes, time and event counts as the loop page by page; what repeats is
    done once: the counters, the trapframe and %cr2 (the last fault's), the ring billing's sums, and the cache
    model's stores (each frame was just zeroed by non-temporal stores, so each store comes from memory). Stops
    before a page the loop would treat otherwise, the reservation's last page (it promotes), memory running
    short or the event budget running out: the loop takes those. Returns where it stopped (va: no page)."""
    replay, map, entry, object, (pt, pt_pa), rv, key_end = run
    log, mmu = machine.log, machine.mmu
    user_ns, sys_ns, events = replay
    per_page = 3 + events + 4 + 1  # the walk that faults, the fault, the walk again, the store
    first = va >> 12
    index = first & 0x1FF  # (pindex + pg_color) & 511: the object is coloured to match the region
    pindex = (va - entry.start + entry.offset) >> 12
    room = min(
        (min(end, key_end, (va | 0x1FFFFF) + 1) - va) >> 12,
        511 - rv.popcnt,  # the page that completes the reservation promotes it
        kvm.phys.free_count + kvm.v_reserved_free - kvm.v_free_reserved - 1,  # zero_fill_replay_key's memory test
        (log.event_budget - log.record_budget - log.unrecorded) // per_page,
    )
    tlb, memq, swblk, popmap = mmu.tlb, object.memq, object.swblk, rv.popmap
    n = 0
    while n < room and not (
        first + n in tlb or pt[index + n] & PG_V or pindex + n in memq or pindex + n in swblk or popmap >> index + n & 1
    ):
        n += 1
    if not n:
        return va
    # What zero_fill_unrecorded does to each page (from the reservation, not prezeroed), and the TLB fill.
    frames, page_array, active = machine.physmem.frames, kvm.page_array, kvm.queues[PQ_ACTIVE].pages
    host = machine.host
    backed, first_touch_ns = host.backed, host.first_touch_ns
    pmap, prot = map.pmap, entry.protection
    flags = PG_V | PG_A | PG_U | PG_MANAGED | PG_RW | PG_M | (0 if prot & VM_PROT_EXECUTE else PG_NX)
    pde = mmu.pde_cache[va >> 21]
    tlb_bits = (pde & flags & (PG_RW | PG_U)) | ((pde | flags) & PG_NX) | (flags & (PG_G | PG_M))
    tlb_entries = mmu.tlb_entries
    level_ns = mmu.level_ns
    store_ns = machine.caches.memory.write_ps * 4096 // 1000
    now, since = log.now, machine._ring_since
    user_closed = sys_closed = host_ns = 0
    for i in range(index, index + n):
        pfn = rv.pfn + i
        m = page_array.get(pfn)
        if m is None:
            m = page_array[pfn] = VmPage(pfn << 12)
        m.reserv = rv
        m.flags = m.oflags = m.wire_count = 0
        m.object = object
        m.pindex = pindex
        memq[pindex] = m
        frames.pop(pfn, None)
        fault_ns = sys_ns
        if backed is not None and not backed[pfn]:  # HostBacking.first_write
            backed[pfn] = 1
            fault_ns += first_touch_ns
            host_ns += first_touch_ns
        m.valid = m.dirty = VM_PAGE_BITS_ALL
        m.aflags = PGA_WRITEABLE
        pt[i] = pte = m.phys_addr | flags
        m.pv.append((pmap, va))
        m.queue = PQ_ACTIVE
        m.act_count = ACT_INIT
        active[m] = None
        if len(tlb) >= tlb_entries:
            del tlb[next(iter(tlb))]
        tlb[va >> 12] = (pte & PG_FRAME) | tlb_bits
        if byte:
            frames[pfn] = byte
        # The time: the walk, the fault's user part, its system part (a ring each), the walk again, the store.
        now += level_ns + user_ns
        user_closed += now - since
        sys_closed += fault_ns
        now = since = now + fault_ns
        now += level_ns + store_ns
        pindex += 1
        va += 4096
    closed = machine._closed_ns
    closed[USER_CPL] += user_closed
    closed[KERNEL_CPL] += sys_closed
    log.now, machine._ring_since = now, since
    host.ns += host_ns
    zero_then_store_unrecorded(machine.caches, [(rv.pfn + i) << 12 for i in range(index, index + n)])
    rv.popmap |= ((1 << n) - 1) << index
    rv.popcnt += n
    kvm.v_reserved_free -= n
    object.resident_page_count += n
    page_array[pt_pa >> 12].wire_count += n  # the PT page holds n more valid entries
    pmap.pm_resident += n
    cnt = kvm.cnt
    cnt.v_trap += n
    cnt.v_vm_faults += n
    cnt.v_pagezero += n
    cnt.v_zfod += n
    cnt.faults_user["zero_fill"] += n
    mmu.misses += 2 * n
    mmu.walks += 2 * n
    log.unrecorded += per_page * n
    _fault_frame(machine, td, va - 4096, PGEX_W | PGEX_U)
    return va


def _zero_fill_run(td, va: int, access: int) -> tuple | None:
    """What memset_pages_unrecorded needs to replay the demand-zero faults of va's 2 MiB region: the replay and
    context of the fault at va (zero_fill_replay_key), if it comes from an existing reservation and was measured
    already, with where the key stops holding (the end of the map entry). None if the region's faults are not
    replayable that way."""
    found = zero_fill_replay_key(td, va, access & (PGEX_W | PGEX_U | PGEX_I))
    if found is None:
        return None
    key, (map, entry, object, _pindex, pt_and_pa, rv, _index) = found
    replay = pcpu.kernel.vm.fault_replays.get(key)
    if replay is None or rv is None or object.pg_color & 0x1FF != (va >> 12) - _pindex & 0x1FF:
        return None
    return replay, map, entry, object, pt_and_pa, rv, entry.end


def _measure_fault(td, fault: PageFault, key: tuple) -> None:
    """Take the fault the full way, and remember what it cost if it went the way the replay reproduces."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    log, cnt = machine.log, vm.cnt
    prezeroed = key[1]
    host_before = machine.host.ns  # the host's backing of a fresh frame is the frame's, not the path's: not replayed
    before = (log.now, machine.user_ns, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions)
    _user_fault(fault)
    after = (log.now, machine.user_ns, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions)
    expected = (before[3] + 1, before[4] + prezeroed, before[5] + (not prezeroed), before[6])
    if after[3:] == expected and machine.cpu.regs["cpl"] == 3:
        user = after[1] - before[1]
        host = machine.host.ns - host_before
        vm.fault_replays[key] = (user, after[0] - before[0] - user - host, after[2] - before[2])


def _replay_fault(td, va: int, err: int, replay: tuple[int, int, int], context: tuple) -> None:
    machine = pcpu.machine
    log, regs = machine.log, machine.cpu.regs
    user_ns, sys_ns, events = replay
    # The fault's time: user_ns in ring 3, then sys_ns in ring 0, billed as cpu.set("cpl", ...) would at each
    # change of ring (Machine._cpl_changed), with no delta to record.
    now = log.now + user_ns
    closed = machine._closed_ns
    closed[USER_CPL] += now - machine._ring_since
    regs["cpl"] = KERNEL_CPL
    sys_ns += zero_fill_unrecorded(td, va, err, context)
    _fault_frame(machine, td, va, err)
    closed[KERNEL_CPL] += sys_ns
    log.now = machine._ring_since = now + sys_ns
    regs["cpl"] = USER_CPL
    log.unrecorded += events
    if log.unrecorded + log.record_budget > log.event_budget:
        raise EventBudgetExceeded(log.event_budget)


def _fault_frame(machine, td, va: int, err: int) -> None:
    """What a replayed user fault leaves in the thread's trapframe and in %cr2 (the registers it saved, the
    exception's frame), as trap() would."""
    regs = machine.cpu.regs
    tf = td.td_frame.regs
    saved = _saved_values(regs)
    if _saved_in_frame(tf) != saved:  # a loop's faults find the same registers in the frame: nothing to write
        tf.update(zip(_SAVED_FIELDS, saved, strict=True))
    tf["tf_rip"] = regs["rip"]
    tf["tf_rsp"] = regs["rsp"]
    tf["tf_rflags"] = regs["rflags"]
    tf["tf_cs"] = KUCSEL
    tf["tf_ss"] = KUDSEL
    tf["tf_trapno"] = T_PAGEFLT
    tf["tf_err"] = err
    tf["tf_addr"] = va
    regs["cr2"] = va


def not_present_fault_unrecorded(va: int, err: int) -> None:
    """user_fault(PageFault(va, err, "PTE not present")), for loops that met NOT_PRESENT (recording off): the
    exception object is made only if the fault takes the full path."""
    if not user_fault_unrecorded(va, err, None):
        _user_fault(PageFault(va, err, "PTE not present"))


# -- kernel-mode faults (copyin, copyout) -----------------------------------------------------------------------


def kernel_fault_unrecorded(fault: PageFault, rip: int) -> bool:
    """A kernel-mode #PF in a copy routine (pcb_onfault set) on a page not present, that vm_fault would fill with
    zeros as zero_fill_replay_key sees it (recording off): replay one measured before (its time, all in ring 0,
    and its event count) with zero_fill_unrecorded's state changes; the CPU ends as IRETQ leaves it (%rip
    at the faulting instruction, rflags as they were, %cr2 the address). False if not such a fault."""
    td = pcpu.curthread
    va, err = fault.va, fault.err
    if not td.td_pcb.pcb_onfault or err & (PGEX_P | PGEX_U | PGEX_RSV):
        return False
    found = zero_fill_replay_key(td, va, err)
    if found is None:
        return False
    key, context = found
    key = ("kernel", *key)
    machine, vm = pcpu.machine, pcpu.kernel.vm
    log, cnt, regs = machine.log, vm.cnt, machine.cpu.regs
    replay = vm.fault_replays.get(key)
    if replay is not None:
        sys_ns, events = replay
        sys_ns += zero_fill_unrecorded(td, va, err, context, usermode=False)
        regs["rip"] = rip
        regs["cr2"] = va
        log.now += sys_ns
        log.unrecorded += events
        if log.unrecorded + log.record_budget > log.event_budget:
            raise EventBudgetExceeded(log.event_budget)
        return True
    # Take it the full way, and remember what it cost if it went the way the replay reproduces.
    prezeroed = key[2]
    host_before = machine.host.ns
    before = (log.now, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions, regs["rflags"])
    _kernel_fault(fault, rip)
    after = (log.now, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions, regs["rflags"])
    expected = (before[2] + 1, before[3] + prezeroed, before[4] + (not prezeroed), before[5], before[6])
    if after[2:] == expected and regs["cpl"] == KERNEL_CPL and regs["rip"] == rip and regs["cr2"] == va:
        vm.fault_replays[key] = (after[0] - before[0] - (machine.host.ns - host_before), after[1] - before[1])
    return True


# -- the replay key and the state changes of a demand-zero fault -----------------------------------------------


def zero_fill_replay_key(td, va: int, err: int) -> tuple | None:
    """If a user fault at va is a plain demand-zero fill that zero_fill_unrecorded can reproduce, the
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
    key = (access, prezeroed, entry.protection, td.td_pflags, td.td_pcb.pcb_flags & PCB_FULL_IRET, p.p_flag,
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


def zero_fill_unrecorded(td, va: int, err: int, context: tuple, usermode: bool = True) -> int:
    """What vm_fault's zero-fill path does to the VM state, without the steps' events: the page from the
    reservation, zeroed, entered writable (or not) in the pmap, activated and counted. `context` is what
    zero_fill_replay_key found; `usermode` is the mode the fault was taken in (kernel: copyout's faults).
    Returns the time the replay does not hold: the host's backing of a fresh frame (pagezero's first write)."""
    kvm = pcpu.kernel.vm
    cnt = kvm.cnt
    host_ns = 0
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
        machine = pcpu.machine
        machine.physmem.frames.pop(pfn, None)  # pagezero: its movnti stores leave the frame in no cache
        machine.caches.evict(pfn << 12)
        host_ns = machine.host.first_write(pfn)
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
    return host_ns
