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

Fast-forward: with recording off, the walk is sim/machine/fastforward.py's walk_unrecorded, the same walk
without the per-level events (counted all the same), which is what lets a run touch gigabytes.

Deltas: ("pte", entry_pa, old, new) for an entry the walk updated (A and D bits).
"""

from __future__ import annotations

from types import MethodType

from sim.core.events import Invlpg, PdeCacheHit, TlbFill, TlbFlush, TlbMiss, WalkLevel
from sim.machine.physmem import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PhysMem

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


# What the fast-forward walk (sim/machine/fastforward.py) answers instead of a physical address:
WALK_IN_FULL = -1  # it does not cover this walk (a large page, an unusual table): Mmu._walk does it
NOT_PRESENT = -2  # the PTE is not present (a #PF to take)


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
        from sim.machine.fastforward import walk_unrecorded  # (it reads this module's bits: imported once made)

        self.walk_unrecorded = MethodType(walk_unrecorded, self)

    # -- translation ----------------------------------------------------------------------------------------------

    def translate(self, va: int, access: int) -> int:
        """The physical address for `va`, or PageFault. `access` is PGEX_W | PGEX_U | PGEX_I as they apply."""
        if self.regs["cr3"] != self.loaded_cr3:
            self._cr3_reloaded()
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
            pa = self.walk_unrecorded(va, access)  # fast-forward: the same walk, without its events
            if pa >= 0:
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
        """The hardware's page walk: from %cr3, one entry per level, the permissions of every level ANDed."""
        log = self.log
        recording = log.recording
        physmem = self.physmem
        self.misses += 1
        self.walks += 1
        cr3 = self.regs["cr3"]
        log.emit("tlb", "miss", TlbMiss(va, cr3) if recording else None)
        table, eff, nx, first = cr3 & PG_FRAME, PG_RW | PG_U, 0, 0
        cached_pde = self.pde_cache.get(va >> PDRSHIFT)
        if cached_pde is not None:
            # The paging-structure cache remembers where this 2 MiB region's page table is: only the PTE is read.
            table, eff, nx, first = cached_pde & PG_FRAME, cached_pde & (PG_RW | PG_U), cached_pde & PG_NX, 3
            log.emit("walk", "PDE cache", PdeCacheHit(va, table) if recording else None)
        page_size = PAGE_SIZE
        for level in range(first, 4):
            index = (va >> LEVEL_SHIFTS[level]) & 0x1FF
            entry_pa = table + index * 8
            log.now += self.level_ns
            entry = physmem.read_entry(entry_pa)
            if entry & PG_V and not entry & PG_A:
                entry = self._set_bit(entry_pa, entry, PG_A)  # the walk marks every entry it uses accessed
            log.emit("walk", LEVEL_NAMES[level], WalkLevel(level, index, entry_pa, entry) if recording else None)
            if not entry & PG_V:
                raise PageFault(va, access & (PGEX_W | PGEX_U | PGEX_I), f"{LEVEL_NAMES[level]} not present")
            eff &= entry
            nx |= entry & PG_NX
            if level in (1, 2) and entry & PG_PS:
                page_size = 1 << LEVEL_SHIFTS[level]  # a 1 GiB or 2 MiB page: the walk ends here
                break
            if level == 2:
                self._cache_pde(va, (entry & PG_FRAME) | (eff & (PG_RW | PG_U)) | nx)
            table = entry & PG_FRAME
        eff = (eff & (PG_RW | PG_U)) | nx | (entry & (PG_G | PG_M))
        if not self._allowed(eff, access):
            raise PageFault(va, (access & (PGEX_W | PGEX_U | PGEX_I)) | PGEX_P, "protection violation")
        if access & PGEX_W and not entry & PG_M:
            entry = self._set_bit(entry_pa, entry, PG_M)  # the leaf's dirty bit: the page has been written
            eff |= PG_M
        frame = entry & PG_FRAME & ~(page_size - 1)
        if page_size == PAGE_SIZE:
            self._cache(self.tlb, self.tlb_entries, va >> PAGE_SHIFT, frame | eff)
        elif page_size == NBPDR:
            self._cache(self.tlb_large, self.tlb_large_entries, va >> PDRSHIFT, frame | eff)
        # (a 1 GiB page, the direct map's, is not cached: a rare path)
        pa = frame | (va & (page_size - 1))
        log.emit("tlb", "fill", TlbFill(va & ~PAGE_MASK, pa & ~PAGE_MASK, page_size, eff) if recording else None)
        return pa

    def _set_bit(self, entry_pa: int, entry: int, bit: int) -> int:
        """The walk sets A or D in an entry, as the hardware does (a recorded ("pte", ...) delta)."""
        new = entry | bit
        self.physmem.write_entry(entry_pa, new)
        if self.log.recording:
            self.log.delta(("pte", entry_pa, entry, new))
        return new

    @staticmethod
    def _cache(tlb: dict[int, int], size: int, vpn: int, value: int) -> None:
        if len(tlb) >= size:
            del tlb[next(iter(tlb))]  # the oldest entry makes room
        tlb[vpn] = value

    def _cache_pde(self, va: int, value: int) -> None:
        cache = self.pde_cache
        if len(cache) >= PDE_CACHE_ENTRIES and (va >> PDRSHIFT) not in cache:
            del cache[next(iter(cache))]
        cache[va >> PDRSHIFT] = value

    # -- invalidation ------------------------------------------------------------------------------------------

    def invlpg(self, va: int) -> None:
        """INVLPG: drop any cached translation of the page holding `va`."""
        machine = self.machine
        machine.charge(machine.profile.invlpg_ns)
        self.tlb.pop(va >> PAGE_SHIFT, None)
        self.tlb_large.pop(va >> PDRSHIFT, None)
        self.pde_cache.clear()  # INVLPG also drops every paging-structure cache entry (SDM 4.10.4.1)
        machine.emit("insn", "invlpg", Invlpg(va & ~PAGE_MASK) if machine.log.recording else None)

    def invltlb(self) -> None:
        """Reload %cr3 with its own value: every non-global entry goes."""
        self._flush_nonglobal()
        self.machine.emit("insn", "movq %cr3,%cr3")

    def _cr3_reloaded(self) -> None:
        self.loaded_cr3 = self.regs["cr3"]
        self._flush_nonglobal()
        self.machine.emit("tlb", "flush", TlbFlush(self.loaded_cr3))

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
