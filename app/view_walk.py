"""The page-table walk view: the latest translation the MMU walked, level by level, up to the current step.

The MMU records a walk as a `tlb miss` event (TlbMiss: the virtual address), one `walk` event per level read
(WalkLevel: level, index, entry address and value), then a `tlb fill` (TlbFill: the physical page), or a `#PF`
trap when an entry is not present or forbids the access. A translation the TLB already held makes no walk: a
`user touch` step (UserTouch) with no walk before it was a TLB hit.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.navigate import LogIndex
from sim.core.events import TlbFill, TlbMiss, UserTouch
from sim.core.events import WalkLevel as WalkEvent
from sim.core.log import Event
from sim.machine.mmu import LEVEL_NAMES, LEVEL_SHIFTS, flag_names
from sim.narrative.vm import walk_leads_to

WALK_KINDS = ("tlb", "walk")
LEVEL_LABELS = ("PML4", "PDPT", "PD", "PT")
LEVEL_BITS = ("47–39", "38–30", "29–21", "20–12")
SHOWN_FLAGS = ("P", "RW", "US", "A", "D", "PS", "G", "NX")


@dataclass(frozen=True)
class AddressPart:
    label: str  # PML4, PDPT, PD, PT, offset
    bits: str  # "47–39"
    binary: str
    value: int
    css: str  # level-0 .. level-3, offset


@dataclass(frozen=True)
class WalkLevel:
    label: str  # PML4E ...
    table_label: str  # PML4 ...
    index: int
    entry_address: int
    entry: int
    flags: tuple[tuple[str, bool], ...]  # the entry's main flags, set or clear
    extra_flags: tuple[str, ...]  # any other bit set (PG_MANAGED, ...)
    leads_to: str  # "next table 0x...", "page 0x...", "not present"
    present: bool
    css: str


@dataclass(frozen=True)
class WalkView:
    va: int | None
    parts: tuple[AddressPart, ...]
    levels: tuple[WalkLevel, ...]
    step: int | None  # the step the walk began (its tlb miss)
    outcome: str  # "translated", "fault", "walking", "hit", "none"
    pa: int | None
    summary: str
    current: bool  # the current step is part of this walk (or is the hit)


def split_address(va: int) -> tuple[AddressPart, ...]:
    parts = []
    for level, shift in enumerate(LEVEL_SHIFTS):
        index = (va >> shift) & 0x1FF
        parts.append(AddressPart(LEVEL_LABELS[level], LEVEL_BITS[level], f"{index:09b}", index, f"level-{level}"))
    offset = va & 0xFFF
    parts.append(AddressPart("offset", "11–0", f"{offset:012b}", offset, "offset"))
    return tuple(parts)


def _level(event: Event) -> WalkLevel | None:
    read = event.data
    if type(read) is not WalkEvent:
        return None  # (the PDE cache's note: no entry read)
    names = flag_names(read.entry)
    if read.present:
        what, address = walk_leads_to(read)
        leads = f"{what} {address:#x}"
    else:
        leads = "not present: the walk stops with a page fault"
    return WalkLevel(
        label=LEVEL_NAMES[read.level],
        table_label=LEVEL_LABELS[read.level],
        index=read.index,
        entry_address=read.entry_address,
        entry=read.entry,
        flags=tuple((flag, flag in names) for flag in SHOWN_FLAGS),
        extra_flags=tuple(name for name in names if name not in SHOWN_FLAGS),
        leads_to=leads,
        present=read.present,
        css=f"level-{read.level}",
    )


def walk_view(index: LogIndex, events: list[Event], step: int) -> WalkView:
    event = events[step]
    miss = index.previous_before(index.positions("tlb", "miss"), step + 1)
    if event.kind == "user" and event.name in ("touch", "load", "store") and (miss is None or miss < step - 6):
        touched = event.data
        if type(touched) is UserTouch:
            va, pa = touched.va, touched.pa
            return WalkView(va, split_address(va), (), None, "hit", pa, f"TLB hit: {va:#x} -> {pa:#x}, no walk", True)
    if miss is None:
        return WalkView(None, (), (), None, "none", None, "No page-table walk yet in this run.", False)
    missed = events[miss].data
    va = missed.va if type(missed) is TlbMiss else 0
    levels, outcome, pa, last = [], "walking", None, miss
    for at in range(miss + 1, min(miss + 8, len(events))):
        later = events[at]
        if later.kind == "walk":
            level = _level(later)
            if level is not None:
                levels.append(level)
                last = at
                if not level.present:
                    outcome = "fault"
                    break
        elif later.kind == "tlb" and later.name == "fill":
            filled = later.data
            pa = (filled.pa | (va & 0xFFF)) if type(filled) is TlbFill else None
            outcome, last = "translated", at
            break
        elif later.kind == "trap":
            outcome, last = "fault", at
            break
    else:
        if outcome == "walking" and levels:
            outcome = "fault"  # the entries were there but forbade the access: a protection fault follows
    shown = [level for level, at in zip(levels, range(miss + 1, miss + 1 + len(levels)), strict=False) if at <= step]
    current = miss <= step <= last + 1
    if step < last and outcome != "walking":
        shown_outcome = "walking"
    else:
        shown_outcome = outcome
    summary = {
        "walking": f"TLB miss for {va:#x}: walking the page tables from %cr3",
        "translated": f"TLB miss, walked: {va:#x} -> {pa:#x}" if pa is not None else f"TLB miss for {va:#x}",
        "fault": f"TLB miss, and the walk for {va:#x} fails: page fault (#PF, vector 14)",
    }[shown_outcome]
    if not current:
        summary = f"Latest walk, step {miss}: {summary}"
    return WalkView(va, split_address(va), tuple(shown), miss, shown_outcome, pa, summary, current)
