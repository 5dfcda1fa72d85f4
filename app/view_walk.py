"""The page-table walk view: the latest translation the MMU walked, level by level, up to the current step.

The MMU records a walk as a `tlb miss` event naming the virtual address, one `walk` event per level read
(sim/machine/mmu.py writes their details in one fixed format, read back here), then a `tlb fill` with the
physical page, or a `#PF` trap when an entry is not present or forbids the access. A translation the TLB
already held makes no walk: a `user touch/load/store` step with no walk before it was a TLB hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.navigate import LogIndex
from sim.core.log import Event
from sim.machine.mmu import LEVEL_NAMES, LEVEL_SHIFTS, flag_names
from sim.narrative import detail as event_detail

# mmu.py: "PTE[36] at 0x402d120 = 0x8000000004034467 (P RW US A D PG_MANAGED NX) -> page 0x4034000"
#     or: "PTE[36] at 0x402d120 = 0x0: not present -> #PF"
_WALK = re.compile(
    r"(?P<level>\w+)\[(?P<index>\d+)\] at (?P<at>0x[0-9a-f]+) = (?P<entry>0x[0-9a-f]+)"
    r"(?:: (?P<missing>not present)| \([^)]*\) -> (?P<what>[a-z ]+) (?P<next>0x[0-9a-f]+))"
)
_MISS = re.compile(r"(0x[0-9a-f]+):")
_FILL = re.compile(r"-> (0x[0-9a-f]+) cached")
_TOUCH = re.compile(r"(?:read|write|load|store|fetch)?\s*(0x[0-9a-f]+) -> (0x[0-9a-f]+)")
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
    found = _WALK.match(event_detail(event))
    if not found or found.group("level") not in LEVEL_NAMES:
        return None
    number = LEVEL_NAMES.index(found.group("level"))
    entry = int(found.group("entry"), 16)
    names = flag_names(entry)
    if found.group("missing"):
        leads = "not present: the walk stops with a page fault"
    else:
        leads = f"{found.group('what')} {found.group('next')}"
    return WalkLevel(
        label=LEVEL_NAMES[number],
        table_label=LEVEL_LABELS[number],
        index=int(found.group("index")),
        entry_address=int(found.group("at"), 16),
        entry=entry,
        flags=tuple((flag, flag in names) for flag in SHOWN_FLAGS),
        extra_flags=tuple(name for name in names if name not in SHOWN_FLAGS),
        leads_to=leads,
        present=not found.group("missing"),
        css=f"level-{number}",
    )


def walk_view(index: LogIndex, events: list[Event], step: int) -> WalkView:
    event = events[step]
    miss = index.previous_before(index.positions("tlb", "miss"), step + 1)
    if event.kind == "user" and event.name in ("touch", "load", "store") and (miss is None or miss < step - 6):
        found = _TOUCH.search(event_detail(event))
        if found:
            va, pa = int(found.group(1), 16), int(found.group(2), 16)
            return WalkView(va, split_address(va), (), None, "hit", pa, f"TLB hit: {va:#x} -> {pa:#x}, no walk", True)
    if miss is None:
        return WalkView(None, (), (), None, "none", None, "No page-table walk yet in this run.", False)
    found = _MISS.match(event_detail(events[miss]))
    va = int(found.group(1), 16) if found else 0
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
            filled = _FILL.search(event_detail(later))
            pa = (int(filled.group(1), 16) | (va & 0xFFF)) if filled else None
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
