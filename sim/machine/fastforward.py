"""Fast-forward for the MMU: what the hardware does when nobody is watching, at a fraction of the cost.

Not part of the machine a student reads (that is sim/machine/mmu.py): past a run's record budget nothing is
recorded, and these functions do the same work as Mmu.translate and Mmu._walk, with the same state changes
(accessed and dirty bits, the TLB, the PDE cache), the same simulated time and the same number of events,
counted rather than made. tests/sim/test_fast_forward.py holds them to that: a run fast-forwarded ends exactly
as the same run fully recorded.

The names say "unrecorded" so that none is mistaken for a function of the hardware or of FreeBSD. The fault
replays built on them (the kernel's side) are in sim/kern/fastforward.py.
"""

from __future__ import annotations

from sim.core.log import EventBudgetExceeded
from sim.machine.memhier import BLOCK_SHIFT, BLOCK_SIZE, MemoryHierarchy
from sim.machine.mmu import (
    ADDRESS_MASK,
    KERNEL_BOTTOM,
    NBPDR,
    NOT_PRESENT,
    PDRSHIFT,
    PG_A,
    PG_FRAME,
    PG_G,
    PG_M,
    PG_NX,
    PG_PS,
    PG_PS_FRAME,
    PG_RW,
    PG_U,
    PG_V,
    PGEX_I,
    PGEX_P,
    PGEX_U,
    PGEX_W,
    USER_TOP,
    WALK_IN_FULL,
    GeneralProtection,
    Mmu,
    PageFault,
)
from sim.machine.physmem import PAGE_MASK, PAGE_SHIFT


def count_unrecorded(log, n: int) -> None:
    """n events that happened while recording is off, counted (and held to the budget) as EventLog.emit would
    count them one by one: for fast-forward paths that skip the calls."""
    log.unrecorded += n
    if log.unrecorded + log.record_budget > log.event_budget:
        raise EventBudgetExceeded(log.event_budget)


def translate_unrecorded(mmu: Mmu, va: int, access: int) -> int:
    """mmu.translate(va, access), except that with recording off a page whose PTE is not present (in a page
    table the PDE cache leads to) gives NOT_PRESENT rather than raising PageFault (the walk's costs and events
    are counted all the same): a loop over user memory then takes the fault without an exception."""
    if mmu.log.recording or mmu.regs["cr3"] != mmu.loaded_cr3:
        return mmu.translate(va, access)  # (a new address space: its first miss raises, as translate's would)
    cached = mmu.tlb.get(va >> PAGE_SHIFT)
    if cached is not None:
        if mmu._allowed(cached, access) and (not access & PGEX_W or cached & PG_M):
            mmu.hits += 1
            return (cached & PG_FRAME) | (va & PAGE_MASK)
    else:
        cached = mmu.tlb_large.get(va >> PDRSHIFT)
        if cached is not None and mmu._allowed(cached, access) and (not access & PGEX_W or cached & PG_M):
            mmu.hits += 1
            return (cached & PG_PS_FRAME) | (va & (NBPDR - 1))
    if USER_TOP <= va < KERNEL_BOTTOM or va > ADDRESS_MASK:
        raise GeneralProtection(va)
    pa = walk_unrecorded(mmu, va, access)
    return pa if pa != WALK_IN_FULL else mmu._walk(va, access)


def walk_unrecorded(mmu: Mmu, va: int, access: int) -> int:
    """Mmu._walk unrolled, with recording off: the physical address, or PageFault, with the same state changes,
    counts and costs; WALK_IN_FULL (nothing done) if it needs the general walk (a large page, an unusual
    table); a PTE not present under a cached PDE, the common fault, is returned as NOT_PRESENT for the caller
    to raise. Mmu binds it as its walk_unrecorded method."""
    log = mmu.log
    cached_pde = mmu.pde_cache.get(va >> PDRSHIFT)
    if cached_pde is not None:
        pt = mmu.physmem.frames.get((cached_pde & PG_FRAME) >> PAGE_SHIFT)
        if type(pt) is not list:
            return WALK_IN_FULL
        mmu.misses += 1
        mmu.walks += 1
        log.now += mmu.level_ns
        i1 = (va >> 12) & 0x1FF
        e1 = pt[i1]
        if not e1 & PG_V:
            log.unrecorded += 3  # count_unrecorded(log, 3): the miss, the cache hit and the PTE
            if log.unrecorded + log.record_budget > log.event_budget:
                raise EventBudgetExceeded(log.event_budget)
            return NOT_PRESENT  # the caller raises PageFault(va, fault, "PTE not present"), or takes it so
        if not e1 & PG_A:
            pt[i1] = e1 = e1 | PG_A
        eff = (cached_pde & e1 & (PG_RW | PG_U)) | ((cached_pde | e1) & PG_NX) | (e1 & (PG_G | PG_M))
        if not mmu._allowed(eff, access):
            count_unrecorded(log, 3)
            raise PageFault(va, (access & (PGEX_W | PGEX_U | PGEX_I)) | PGEX_P, "protection violation")
        log.unrecorded += 4  # count_unrecorded(log, 4): the miss, the cache hit, the PTE and the fill
        if log.unrecorded + log.record_budget > log.event_budget:
            raise EventBudgetExceeded(log.event_budget)
        # _fill, inline
        if access & PGEX_W and not e1 & PG_M:
            pt[i1] = e1 = e1 | PG_M
            eff |= PG_M
        frame = e1 & PG_FRAME
        tlb = mmu.tlb
        if len(tlb) >= mmu.tlb_entries:
            del tlb[next(iter(tlb))]
        tlb[va >> PAGE_SHIFT] = frame | eff
        return frame | (va & PAGE_MASK)
    fault = access & (PGEX_W | PGEX_U | PGEX_I)
    frames = mmu.physmem.frames
    pml4 = frames.get((mmu.regs["cr3"] & PG_FRAME) >> PAGE_SHIFT)
    if type(pml4) is not list:
        return WALK_IN_FULL
    i4 = (va >> 39) & 0x1FF
    e4 = pml4[i4]
    pdpt = frames.get((e4 & PG_FRAME) >> PAGE_SHIFT) if e4 & PG_V else None
    i3 = (va >> 30) & 0x1FF
    e3 = pdpt[i3] if type(pdpt) is list else 0
    if e3 & PG_PS:
        return WALK_IN_FULL
    pd = frames.get((e3 & PG_FRAME) >> PAGE_SHIFT) if e3 & PG_V else None
    i2 = (va >> 21) & 0x1FF
    e2 = pd[i2] if type(pd) is list else 0
    if e2 & PG_PS:
        return WALK_IN_FULL
    pt = frames.get((e2 & PG_FRAME) >> PAGE_SHIFT) if e2 & PG_V else None
    i1 = (va >> 12) & 0x1FF
    e1 = pt[i1] if type(pt) is list else 0
    if (e4 & PG_V and type(pdpt) is not list) or (e3 & PG_V and type(pd) is not list):
        return WALK_IN_FULL
    if e2 & PG_V and type(pt) is not list:
        return WALK_IN_FULL
    mmu.misses += 1
    mmu.walks += 1
    level_ns = mmu.level_ns
    # The walk sets A in each entry it uses, up to the first that is not present.
    if not e4 & PG_V:
        log.now += level_ns
        count_unrecorded(log, 2)  # the events the general walk records: the miss and each level read
        raise PageFault(va, fault, "PML4E not present")
    if not e4 & PG_A:
        pml4[i4] = e4 = e4 | PG_A
    if not e3 & PG_V:
        log.now += 2 * level_ns
        count_unrecorded(log, 3)
        raise PageFault(va, fault, "PDPTE not present")
    if not e3 & PG_A:
        pdpt[i3] = e3 = e3 | PG_A
    if not e2 & PG_V:
        log.now += 3 * level_ns
        count_unrecorded(log, 4)
        raise PageFault(va, fault, "PDE not present")
    if not e2 & PG_A:
        pd[i2] = e2 = e2 | PG_A
    upper = e4 & e3 & e2
    mmu._cache_pde(va, (e2 & PG_FRAME) | (upper & (PG_RW | PG_U)) | ((e4 | e3 | e2) & PG_NX))
    log.now += 4 * level_ns
    if not e1 & PG_V:
        count_unrecorded(log, 5)
        raise PageFault(va, fault, "PTE not present")
    if not e1 & PG_A:
        pt[i1] = e1 = e1 | PG_A
    eff = (e4 & e3 & e2 & e1 & (PG_RW | PG_U)) | ((e4 | e3 | e2 | e1) & PG_NX) | (e1 & (PG_G | PG_M))
    if not mmu._allowed(eff, access):
        count_unrecorded(log, 5)
        raise PageFault(va, fault | PGEX_P, "protection violation")
    count_unrecorded(log, 6)  # the miss, four levels, and the fill
    return _fill(mmu, va, access, pt, i1, e1, eff)


def _fill(mmu: Mmu, va: int, access: int, pt: list[int], i1: int, e1: int, eff: int) -> int:
    if access & PGEX_W and not e1 & PG_M:
        pt[i1] = e1 | PG_M
        eff |= PG_M
    frame = e1 & PG_FRAME
    tlb = mmu.tlb
    if len(tlb) >= mmu.tlb_entries:
        del tlb[next(iter(tlb))]
    tlb[va >> PAGE_SHIFT] = frame | eff
    return frame | (va & PAGE_MASK)


def zero_then_store_unrecorded(caches: MemoryHierarchy, addrs: list[int]) -> None:
    """For each block in order, what pagezero's non-temporal stores and then a store over the whole block do to the
    caches (caches.evict(addr); caches.touch(addr, BLOCK_SIZE)), each store coming from memory: in one pass per
    cache when every cache is LRU. Exact: a whole block is as large as a block gets, so the cache ends holding the
    longest run of most recently used blocks that fits, as it would block by block; when the stores alone overfill
    it, that is the last of them."""
    if caches._lru is None:  # random replacement: its ghosts, block by block
        for addr in addrs:
            caches.evict(addr)
            caches.touch(addr, BLOCK_SIZE)
        return
    blocks_in_order = [addr >> BLOCK_SHIFT for addr in addrs]
    for cache in caches._lru:
        blocks, used, capacity = cache[1], cache[2], cache[3]
        if len(blocks_in_order) * BLOCK_SIZE > capacity:
            blocks.clear()
            kept = blocks_in_order[len(blocks_in_order) - capacity // BLOCK_SIZE :]
            blocks.update(dict.fromkeys(kept, BLOCK_SIZE))
            cache[2] = len(kept) * BLOCK_SIZE
            continue
        pop = blocks.pop
        for block in blocks_in_order:
            used -= pop(block, 0)
            blocks[block] = BLOCK_SIZE
        used += len(blocks_in_order) * BLOCK_SIZE
        popitem = blocks.popitem
        while used > capacity:
            used -= popitem(False)[1]
        cache[2] = used
