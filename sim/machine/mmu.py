"""The amd64 MMU: 4-level page tables in physical memory, the permission checks, and a TLB.

A translation looks in the TLB first. On a miss the hardware walks PML4 -> PDPT -> PD -> PT from %cr3, setting
the accessed bit (A) in each entry it uses and the dirty bit (D) in the leaf on a write, and caches the result.
Every step of a walk is one "walk" event, so a student can watch a virtual address become a physical one.

The TLB is not kept coherent with the page tables by the hardware: the kernel must invalidate it (invlpg, or a
%cr3 reload, which drops every entry that is not global). A missing invalidation is a real bug that this
model reproduces: a stale entry keeps translating. Writes to %cr3 are noticed at the next translation.

Like Intel's cores, the MMU also keeps a paging-structure cache of PDEs: a walk in a 2 MiB region walked
recently starts at the PTE ("PDE cache"). invlpg and a %cr3 reload empty it. A walk costs tlb_walk_ns / 4
for each entry it reads.

Fast-forward: with recording off, _walk_quietly does the same walk without the per-level events (counted all
the same), which is what lets a run touch gigabytes.

Deltas: ("pte", entry_pa, old, new) for an entry the walk updated (A and D bits).
"""

from __future__ import annotations

from sim.core.log import EventBudgetExceeded
from sim.machine.physmem import PAGE_MASK, PAGE_SHIFT, PhysMem

# Page-table entry bits (sys/amd64/include/pmap.h, X86_PG_*)
PG_V = 0x001  # P: present (valid)
PG_RW = 0x002  # RW: writable
PG_U = 0x004  # US: user accessible
PG_NC_PWT = 0x008  # PWT: write-through
PG_NC_PCD = 0x010  # PCD: cache disable
PG_A = 0x020  # A: accessed (set by the walk)
PG_M = 0x040  # D: dirty (set by a write through this entry)
PG_PS = 0x080  # PS: a 2 MiB page in a PDE (1 GiB in a PDPTE)
PG_G = 0x100  # G: global, survives a %cr3 reload
PG_MANAGED = 0x400  # software bit (AVAIL2): a managed page, with a pv entry
PG_W = 0x800  # software bit (AVAIL3): wired mapping
PG_NX = 1 << 63  # NX: no execute
PG_FRAME = 0x000FFFFFFFFFF000
PG_PS_FRAME = 0x000FFFFFFFE00000
PG_1G_FRAME = 0x000FFFFFC0000000

FLAG_NAMES = (
    (PG_V, "P"),
    (PG_RW, "RW"),
    (PG_U, "US"),
    (PG_NC_PWT, "PWT"),
    (PG_NC_PCD, "PCD"),
    (PG_A, "A"),
    (PG_M, "D"),
    (PG_PS, "PS"),
    (PG_G, "G"),
    (PG_MANAGED, "PG_MANAGED"),
    (PG_W, "PG_W"),
    (PG_NX, "NX"),
)

# Page-fault error code pushed by the CPU (machine/pmap.h PGEX_*)
PGEX_P = 0x01  # the page was present: a protection violation
PGEX_W = 0x02  # a write
PGEX_U = 0x04  # from user mode
PGEX_RSV = 0x08  # reserved bits set in an entry
PGEX_I = 0x10  # an instruction fetch

LEVEL_NAMES = ("PML4E", "PDPTE", "PDE", "PTE")
PDE_CACHE_ENTRIES = 32  # paging-structure cache entries for PDEs (order of magnitude of recent Intel cores)
LEVEL_SHIFTS = (39, 30, 21, 12)
NPTEPGSHIFT = 9
PDRSHIFT = 21
NBPDR = 1 << PDRSHIFT  # bytes mapped by one PDE: 2 MiB
PDRMASK = NBPDR - 1

# The canonical halves of a 48-bit address space
USER_TOP = 0x0000800000000000
KERNEL_BOTTOM = 0xFFFF800000000000
ADDRESS_MASK = (1 << 64) - 1

# CR4 and rflags bits the checks read (also in sim.machine.cpu)
_CR4_SMEP = 0x00100000
_CR4_SMAP = 0x00200000
_PSL_AC = 0x00040000


NOT_PRESENT = -2  # Mmu._walk_quietly / translate_quiet: a user page's PTE is not present (a #PF to take)


def count_unrecorded(log, n: int) -> None:
    """n events that happened while recording is off, counted (and held to the budget) as EventLog.emit would
    count them one by one: for fast-forward paths that skip the calls."""
    log.unrecorded += n
    if log.unrecorded + log.record_budget > log.event_budget:
        raise EventBudgetExceeded(log.event_budget)


_FLAG_BITS = PG_NX | 0xFFF
_flags_texts: dict[int, str] = {}


def flag_names(entry: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES if entry & bit]


def flags_text(entry: int) -> str:
    bits = entry & _FLAG_BITS
    text = _flags_texts.get(bits)
    if text is None:
        text = _flags_texts[bits] = " ".join(flag_names(bits)) or "-"
    return text


def is_canonical(va: int) -> bool:
    return va < USER_TOP or KERNEL_BOTTOM <= va <= ADDRESS_MASK


class PageFault(Exception):
    """#PF (vector 14): the CPU could not translate `va` for this access; `err` is the error code it pushes."""

    def __init__(self, va: int, err: int, reason: str) -> None:
        super().__init__(va, err, reason)
        self.va = va
        self.err = err
        self.reason = reason

    def __str__(self) -> str:
        return f"page fault at {self.va:#x}: {self.reason}"


class GeneralProtection(Exception):
    """#GP (vector 13): a non-canonical address was used."""

    def __init__(self, va: int) -> None:
        super().__init__(f"general protection fault: {va:#x} is not a canonical address")
        self.va = va


def walk_page_tables(physmem: PhysMem, cr3: int, va: int) -> dict:
    """Walk `va` from `cr3` without side effects: what `trapscope pagewalk` prints.

    Returns {"va", "levels": [{"level", "index", "entry", "flags", "table"}], and "pa" or "fault"}.
    """
    result: dict = {"va": va, "levels": []}
    if not is_canonical(va):
        result["fault"] = "not a canonical address: bits 63:47 must all be equal (#GP, not #PF)"
        return result
    table = cr3 & PG_FRAME
    for level, shift in enumerate(LEVEL_SHIFTS):
        index = (va >> shift) & 0x1FF
        entry = physmem.read_entry(table + index * 8)
        name = LEVEL_NAMES[level]
        result["levels"].append(
            {"level": name, "index": index, "entry": entry, "flags": flag_names(entry), "table": table}
        )
        if not entry & PG_V:
            result["fault"] = f"{name} {index} is not present: a page fault (page not present)"
            return result
        if entry & PG_PS and level in (1, 2):
            size_mask = (1 << shift) - 1
            frame = entry & (PG_1G_FRAME if level == 1 else PG_PS_FRAME)
            result["pa"] = frame | (va & size_mask)
            result["page_size"] = size_mask + 1
            return result
        table = entry & PG_FRAME
    result["pa"] = table | (va & PAGE_MASK)
    result["page_size"] = PAGE_MASK + 1
    return result


class Mmu:
    """Translates virtual to physical addresses for the CPU, through its TLB and the page tables."""

    def __init__(self, machine, physmem: PhysMem, tlb_entries: int, tlb_large_entries: int) -> None:
        self.machine = machine
        self.physmem = physmem
        self.regs = machine.cpu.regs
        self.tlb: dict[int, int] = {}  # virtual page number -> frame | effective permission bits
        self.tlb_large: dict[int, int] = {}  # va >> 21 -> 2 MiB frame | effective permission bits
        # The paging-structure cache (Intel's PDE cache): va >> 21 -> the PT page's address | the permissions
        # of the levels above it, so a walk in a recently walked 2 MiB region reads only the PTE.
        self.pde_cache: dict[int, int] = {}
        self.tlb_entries = tlb_entries
        self.tlb_large_entries = tlb_large_entries
        self.loaded_cr3 = self.regs["cr3"]
        self.log = machine.log
        self.level_ns = max(1, machine.profile.tlb_walk_ns // 4)  # one entry read by the walk
        self.hits = 0
        self.misses = 0
        self.walks = 0
        self.flushes = 0

    # -- translation ----------------------------------------------------------------------------------------------

    def translate(self, va: int, access: int) -> int:
        """The physical address for `va`, or PageFault. `access` is PGEX_W | PGEX_U | PGEX_I as they apply."""
        return self._translate(va, access, False)

    def translate_quiet(self, va: int, access: int) -> int:
        """translate() for fast-forward loops: the same, except that with recording off a page whose PTE is not
        present (in a page table the PDE cache leads to) gives NOT_PRESENT rather than raising PageFault (the
        walk's costs and events are counted all the same): the caller takes the fault without an exception."""
        return self._translate(va, access, True)

    def _translate(self, va: int, access: int, quiet: bool) -> int:
        if self.regs["cr3"] != self.loaded_cr3:
            self._cr3_reloaded()
            quiet = False  # a new address space: its first miss raises, as translate's would
        cached = self.tlb.get(va >> PAGE_SHIFT)
        if cached is not None:
            if self._allowed(cached, access) and (not access & PGEX_W or cached & PG_M):
                self.hits += 1
                return (cached & PG_FRAME) | (va & PAGE_MASK)
        else:
            cached = self.tlb_large.get(va >> PDRSHIFT)
            if cached is not None and self._allowed(cached, access) and (not access & PGEX_W or cached & PG_M):
                self.hits += 1
                return (cached & PG_PS_FRAME) | (va & (NBPDR - 1))
        if USER_TOP <= va < KERNEL_BOTTOM or va > ADDRESS_MASK:
            raise GeneralProtection(va)
        if not self.log.recording:
            pa = self._walk_quietly(va, access)
            if pa >= 0 or (quiet and pa == NOT_PRESENT):
                return pa
            if pa == NOT_PRESENT:
                raise PageFault(va, access & (PGEX_W | PGEX_U | PGEX_I), "PTE not present")
        return self._walk(va, access)

    def _allowed(self, eff: int, access: int) -> bool:
        if access & PGEX_U:
            if not eff & PG_U:
                return False
        elif eff & PG_U:
            # Supervisor access to a user page: SMAP forbids data access unless rflags.AC (stac); SMEP, fetches.
            cr4 = self.regs["cr4"]
            if access & PGEX_I:
                if cr4 & _CR4_SMEP:
                    return False
            elif cr4 & _CR4_SMAP and not self.regs["rflags"] & _PSL_AC:
                return False
        if access & PGEX_W and not eff & PG_RW:
            return False  # CR0.WP is set, so even the kernel cannot write a read-only page
        if access & PGEX_I and eff & PG_NX:
            return False
        return True

    def _walk(self, va: int, access: int) -> int:
        machine = self.machine
        log = machine.log
        recording = log.recording
        physmem = self.physmem
        frames = physmem.frames
        self.misses += 1
        self.walks += 1
        cr3 = self.regs["cr3"]
        log.emit(
            "tlb", "miss", f"{va:#x}: not in the TLB; walk the page tables from %cr3 = {cr3:#x}" if recording else ""
        )
        table_pa = cr3 & PG_FRAME
        eff = PG_RW | PG_U
        nx = 0
        first = 0
        leaf_shift = PAGE_SHIFT
        cached_pde = self.pde_cache.get(va >> PDRSHIFT)
        if cached_pde is not None:
            # The paging-structure cache remembers where this 2 MiB region's page table is: only the PTE is read.
            table_pa = cached_pde & PG_FRAME
            eff = cached_pde & (PG_RW | PG_U)
            nx = cached_pde & PG_NX
            first = 3
            log.emit(
                "walk",
                "PDE cache",
                f"PML4E, PDPTE and PDE for {va & ~PDRMASK:#x} are in the paging-structure cache: PT at {table_pa:#x}"
                if recording
                else "",
            )
        if first == 3:
            # Only the PTE to read (the loop below, unrolled for its commonest case: the same events and costs).
            index = (va >> PAGE_SHIFT) & 0x1FF
            entry_pa = table_pa + (index << 3)
            table = frames.get(table_pa >> PAGE_SHIFT)
            log.now += self.level_ns
            if type(table) is list:
                entry = table[index]
            else:
                table = None
                entry = physmem.read_entry(entry_pa)
            if not entry & PG_V:
                log.emit(
                    "walk",
                    "PTE",
                    f"PTE[{index}] at {entry_pa:#x} = {entry:#x}: not present -> #PF" if recording else "",
                )
                raise PageFault(va, access & (PGEX_W | PGEX_U | PGEX_I), "PTE not present")
            if not entry & PG_A:
                new = entry | PG_A
                if table is not None:
                    table[index] = new
                else:
                    physmem.write_entry(entry_pa, new)
                if recording:
                    log.delta(("pte", entry_pa, entry, new))
                entry = new
            eff &= entry
            nx |= entry & PG_NX
            log.emit(
                "walk",
                "PTE",
                f"PTE[{index}] at {entry_pa:#x} = {entry:#x} ({flags_text(entry)}) -> page {entry & PG_FRAME:#x}"
                if recording
                else "",
            )
            first = 4  # nothing left for the loop
        for level in range(first, 4):
            shift = LEVEL_SHIFTS[level]
            index = (va >> shift) & 0x1FF
            entry_pa = table_pa + (index << 3)
            table = frames.get(table_pa >> PAGE_SHIFT)
            machine.charge(self.level_ns)
            if type(table) is list:
                entry = table[index]
            else:
                table = None
                entry = physmem.read_entry(entry_pa)
            if not entry & PG_V:
                log.emit(
                    "walk",
                    LEVEL_NAMES[level],
                    f"{LEVEL_NAMES[level]}[{index}] at {entry_pa:#x} = {entry:#x}: not present -> #PF"
                    if recording
                    else "",
                )
                raise PageFault(va, access & (PGEX_W | PGEX_U | PGEX_I), f"{LEVEL_NAMES[level]} not present")
            if not entry & PG_A:
                new = entry | PG_A
                if table is not None:
                    table[index] = new
                else:
                    physmem.write_entry(entry_pa, new)
                if recording:
                    log.delta(("pte", entry_pa, entry, new))
                entry = new
            eff &= entry
            nx |= entry & PG_NX
            large = level in (1, 2) and entry & PG_PS
            what = "large page" if large else ("page" if level == 3 else "next table")
            log.emit(
                "walk",
                LEVEL_NAMES[level],
                f"{LEVEL_NAMES[level]}[{index}] at {entry_pa:#x} = {entry:#x} ({flags_text(entry)}) -> "
                f"{what} {entry & (PG_PS_FRAME if large else PG_FRAME):#x}"
                if recording
                else "",
            )
            if large:
                leaf_shift = shift
                break
            if level == 2:
                self._cache_pde(va, (entry & PG_FRAME) | (eff & (PG_RW | PG_U)) | nx)
            if level < 3:
                table_pa = entry & PG_FRAME
        eff = (eff & (PG_RW | PG_U)) | nx | (entry & (PG_G | PG_M))
        if not self._allowed(eff, access):
            raise PageFault(va, (access & (PGEX_W | PGEX_U | PGEX_I)) | PGEX_P, "protection violation")
        if access & PGEX_W and not entry & PG_M:
            new = entry | PG_M
            if table is not None:
                table[index] = new
            else:
                physmem.write_entry(entry_pa, new)
            if recording:
                log.delta(("pte", entry_pa, entry, new))
            entry = new
            eff |= PG_M
        if leaf_shift == PAGE_SHIFT:
            frame = entry & PG_FRAME
            tlb = self.tlb
            if len(tlb) >= self.tlb_entries:
                del tlb[next(iter(tlb))]  # the oldest entry makes room
            tlb[va >> PAGE_SHIFT] = frame | eff
            pa = frame | (va & PAGE_MASK)
        elif leaf_shift == PDRSHIFT:
            frame = entry & PG_PS_FRAME
            tlb = self.tlb_large
            if len(tlb) >= self.tlb_large_entries:
                del tlb[next(iter(tlb))]
            tlb[va >> PDRSHIFT] = frame | eff
            pa = frame | (va & (NBPDR - 1))
        else:  # a 1 GiB page (the direct map): not cached, a rare path
            pa = (entry & PG_1G_FRAME) | (va & ((1 << 30) - 1))
        log.emit(
            "tlb",
            "fill",
            f"{va & ~PAGE_MASK:#x} -> {pa & ~PAGE_MASK:#x} cached ({flags_text(eff)})" if recording else "",
        )
        return pa

    def _cache_pde(self, va: int, value: int) -> None:
        cache = self.pde_cache
        if len(cache) >= PDE_CACHE_ENTRIES and (va >> PDRSHIFT) not in cache:
            del cache[next(iter(cache))]
        cache[va >> PDRSHIFT] = value

    def _walk_quietly(self, va: int, access: int) -> int:
        """The same walk unrolled, for fast-forward: -1 (nothing done) if it needs the general walk (a large
        page, an unusual table), else the physical address, or PageFault, with the same counts and costs; a PTE
        not present under a cached PDE, the common fault, is returned as NOT_PRESENT for the caller to raise."""
        log = self.log
        cached_pde = self.pde_cache.get(va >> PDRSHIFT)
        if cached_pde is not None:
            pt = self.physmem.frames.get((cached_pde & PG_FRAME) >> PAGE_SHIFT)
            if type(pt) is not list:
                return -1
            self.misses += 1
            self.walks += 1
            log.now += self.level_ns
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
            if not self._allowed(eff, access):
                count_unrecorded(log, 3)
                raise PageFault(va, (access & (PGEX_W | PGEX_U | PGEX_I)) | PGEX_P, "protection violation")
            log.unrecorded += 4  # count_unrecorded(log, 4): the miss, the cache hit, the PTE and the fill
            if log.unrecorded + log.record_budget > log.event_budget:
                raise EventBudgetExceeded(log.event_budget)
            # _fill_quietly, inline
            if access & PGEX_W and not e1 & PG_M:
                pt[i1] = e1 = e1 | PG_M
                eff |= PG_M
            frame = e1 & PG_FRAME
            tlb = self.tlb
            if len(tlb) >= self.tlb_entries:
                del tlb[next(iter(tlb))]
            tlb[va >> PAGE_SHIFT] = frame | eff
            return frame | (va & PAGE_MASK)
        fault = access & (PGEX_W | PGEX_U | PGEX_I)
        frames = self.physmem.frames
        pml4 = frames.get((self.regs["cr3"] & PG_FRAME) >> PAGE_SHIFT)
        if type(pml4) is not list:
            return -1
        i4 = (va >> 39) & 0x1FF
        e4 = pml4[i4]
        pdpt = frames.get((e4 & PG_FRAME) >> PAGE_SHIFT) if e4 & PG_V else None
        i3 = (va >> 30) & 0x1FF
        e3 = pdpt[i3] if type(pdpt) is list else 0
        if e3 & PG_PS:
            return -1
        pd = frames.get((e3 & PG_FRAME) >> PAGE_SHIFT) if e3 & PG_V else None
        i2 = (va >> 21) & 0x1FF
        e2 = pd[i2] if type(pd) is list else 0
        if e2 & PG_PS:
            return -1
        pt = frames.get((e2 & PG_FRAME) >> PAGE_SHIFT) if e2 & PG_V else None
        i1 = (va >> 12) & 0x1FF
        e1 = pt[i1] if type(pt) is list else 0
        if (e4 & PG_V and type(pdpt) is not list) or (e3 & PG_V and type(pd) is not list):
            return -1
        if e2 & PG_V and type(pt) is not list:
            return -1
        self.misses += 1
        self.walks += 1
        level_ns = self.level_ns
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
        self._cache_pde(va, (e2 & PG_FRAME) | (upper & (PG_RW | PG_U)) | ((e4 | e3 | e2) & PG_NX))
        log.now += 4 * level_ns
        if not e1 & PG_V:
            count_unrecorded(log, 5)
            raise PageFault(va, fault, "PTE not present")
        if not e1 & PG_A:
            pt[i1] = e1 = e1 | PG_A
        eff = (e4 & e3 & e2 & e1 & (PG_RW | PG_U)) | ((e4 | e3 | e2 | e1) & PG_NX) | (e1 & (PG_G | PG_M))
        if not self._allowed(eff, access):
            count_unrecorded(log, 5)
            raise PageFault(va, fault | PGEX_P, "protection violation")
        count_unrecorded(log, 6)  # the miss, four levels, and the fill
        return self._fill_quietly(va, access, pt, i1, e1, eff)

    def _fill_quietly(self, va: int, access: int, pt: list[int], i1: int, e1: int, eff: int) -> int:
        if access & PGEX_W and not e1 & PG_M:
            pt[i1] = e1 | PG_M
            eff |= PG_M
        frame = e1 & PG_FRAME
        tlb = self.tlb
        if len(tlb) >= self.tlb_entries:
            del tlb[next(iter(tlb))]
        tlb[va >> PAGE_SHIFT] = frame | eff
        return frame | (va & PAGE_MASK)

    # -- invalidation ------------------------------------------------------------------------------------------

    def invlpg(self, va: int) -> None:
        """INVLPG: drop any cached translation of the page holding `va`."""
        machine = self.machine
        machine.charge(machine.profile.invlpg_ns)
        self.tlb.pop(va >> PAGE_SHIFT, None)
        self.tlb_large.pop(va >> PDRSHIFT, None)
        self.pde_cache.clear()  # INVLPG also drops every paging-structure cache entry (SDM 4.10.4.1)
        machine.emit(
            "insn", "invlpg", f"drop the TLB's translation of {va & ~PAGE_MASK:#x}" if machine.log.recording else ""
        )

    def invltlb(self) -> None:
        """Reload %cr3 with its own value: every non-global entry goes."""
        self._flush_nonglobal()
        self.machine.emit("insn", "movq %cr3,%cr3", "reload %cr3: every non-global TLB entry is dropped")

    def _cr3_reloaded(self) -> None:
        self.loaded_cr3 = self.regs["cr3"]
        self._flush_nonglobal()
        self.machine.emit("tlb", "flush", f"%cr3 = {self.loaded_cr3:#x}: the TLB's non-global entries were dropped")

    def _flush_nonglobal(self) -> None:
        self.flushes += 1
        self.pde_cache.clear()  # paging-structure caches never hold global entries
        self.tlb = {vpn: e for vpn, e in self.tlb.items() if e & PG_G}
        self.tlb_large = {vpn: e for vpn, e in self.tlb_large.items() if e & PG_G}

    def cached(self, va: int) -> int | None:
        """The TLB's cached translation for `va`'s page (frame | bits), if any: for tests and views."""
        if self.regs["cr3"] != self.loaded_cr3:
            self._cr3_reloaded()
        entry = self.tlb.get(va >> PAGE_SHIFT)
        if entry is not None:
            return entry
        return self.tlb_large.get(va >> PDRSHIFT)

    def entries(self) -> list[tuple[int, int]]:
        """Every cached 4 KiB translation as (virtual page address, frame | bits), as of the current %cr3."""
        if self.regs["cr3"] != self.loaded_cr3:
            self._cr3_reloaded()
        return [(vpn << PAGE_SHIFT, entry) for vpn, entry in self.tlb.items()]
