"""The virtual-memory view: the process's vm_map entries -> vm_objects (with their shadow chains) -> resident
pages, a grid of physical frames by state, and the page faults so far by kind.

All of it is folded from the log's keyed deltas (sim/replay.py Replay.table_at): ("map", key, old, new) for map
entries, ("object", id, old, new) for objects and ("page", pfn, old, new) for pages, whose values are the
facts the simulator records (sim/core/events.py: MapEntry, ObjectState, PageState), read here field by field.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from app.navigate import LogIndex
from sim.core.events import MapEntry, MapKey, ObjectState, PageState
from sim.core.log import Event
from sim.narrative.vm import entry_flag_words, inheritance_words, object_type_words, protection_words
from sim.replay import Replay
from sim.vm.vm_init import KERNEL_RESERVED
from sim.vm.vm_page import PQ_NONE

PAGE_SHIFT = 12
FIRST_POOL_PFN = KERNEL_RESERVED >> PAGE_SHIFT  # frames below hold the kernel: not part of the free pool
GRID_COLUMNS = 128  # frames per row of the grid: 512 KiB

# Frame states in the grid: code -> (label, css class). Colours are in the CSS (Okabe-Ito), labels in the legend.
FRAME_STATES = {
    "z": ("free, pre-zeroed (PG_ZERO)", "frame-zero"),
    "f": ("free, not known to be zero", "frame-free"),
    "u": ("in use: a page of an object", "frame-used"),
    "t": ("page-table page (wired, no object)", "frame-table"),
    ".": ("free pool, untouched in this run", "frame-untouched"),
}
FAULT_KINDS = ("zero_fill", "cow", "soft", "hard", "protection", "unmapped")


@dataclass(frozen=True)
class EntryRow:
    start: int
    end: int
    size_kib: int
    protection: str
    max_protection: str
    inherit: str
    flags: str
    chain: tuple[ObjectBox, ...]  # the entry's object, then what it shadows, down the chain
    changed: bool
    map_name: str = ""  # shown when several maps are listed


@dataclass(frozen=True)
class ObjectBox:
    id: int
    type: str
    size_pages: int
    resident: int
    refs: int
    extra: str  # the vnode's path, if any
    pindexes: str  # the resident pages' indexes, as ranges
    changed: bool


@dataclass(frozen=True)
class FrameGrid:
    first_pfn: int
    columns: int
    runs: str  # run-length encoded states: "z12,u3,..." from first_pfn on; uppercase = changed at this step
    counts: tuple[tuple[str, str, int], ...]  # (css, label, how many)
    rows: int


@dataclass(frozen=True)
class VmView:
    pid: int
    entries: tuple[EntryRow, ...]
    grid: FrameGrid
    faults: tuple[tuple[str, int, int], ...]  # (kind, user mode, kernel mode) so far
    fault_total: int
    kernel_frames: int  # frames below the free pool the run's pages use (the shared page, ...)


def _ranges(numbers: list[int], limit: int = 6) -> str:
    if not numbers:
        return ""
    numbers.sort()
    spans, start, previous = [], numbers[0], numbers[0]
    for n in numbers[1:]:
        if n != previous + 1:
            spans.append((start, previous))
            start = n
        previous = n
    spans.append((start, previous))
    text = [f"{a}" if a == b else f"{a}–{b}" for a, b in spans[:limit]]
    return ", ".join(text) + (f", … ({len(spans) - limit} more ranges)" if len(spans) > limit else "")


def fault_modes(index: LogIndex, events: list[Event]) -> dict[str, tuple[list[int], list[int]]]:
    """kind -> (steps of user-mode faults, steps of kernel-mode faults): from the trap that led to each."""
    traps = index.positions("trap")
    modes: dict[str, tuple[list[int], list[int]]] = {}
    for step in index.positions("fault"):
        trap = LogIndex.previous_before(traps, step)
        kernel = trap is not None and not events[trap].data.user
        modes.setdefault(events[step].name, ([], []))[1 if kernel else 0].append(step)
    return modes


def _page_code(state: PageState) -> str:
    if state.object is not None:
        return "u"
    if state.queue != PQ_NONE or state.wired:
        return "t"
    return "z" if state.zero else "f"


def frame_grid(pages: dict[int, PageState], changed: set[int]) -> tuple[FrameGrid, int]:
    pool = sorted(pfn for pfn in pages if pfn >= FIRST_POOL_PFN)
    kernel_frames = len(pages) - len(pool)
    if not pool:
        return FrameGrid(FIRST_POOL_PFN, GRID_COLUMNS, "", (), 0), kernel_frames
    span = pool[-1] - pool[0] + 1
    columns = GRID_COLUMNS if span > 2048 else 64 if span > 512 else 32  # few frames: bigger cells
    first = pool[0] - pool[0] % columns
    last = pool[-1]
    runs: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    code, length = "", 0
    for pfn in range(first, last + 1):
        state = pages.get(pfn)
        c = "." if state is None else _page_code(state)
        counts[c] += 1
        if pfn in changed:
            c = c.upper()
        if c == code:
            length += 1
        else:
            if length:
                runs.append(f"{code}{length}")
            code, length = c, 1
    runs.append(f"{code}{length}")
    shown = tuple((FRAME_STATES[c][1], FRAME_STATES[c][0], counts[c]) for c in FRAME_STATES if counts.get(c))
    rows = -(-(last + 1 - first) // columns)
    return FrameGrid(first, columns, ",".join(runs), shown, rows), kernel_frames


def vm_view(replay: Replay, index: LogIndex, modes, events: list[Event], step: int, pid: int) -> VmView:
    event = events[step]
    changed_keys = {(d[0], d[1]) for d in event.deltas if d[0] in ("map", "object", "page")}
    maps: dict[MapKey, MapEntry] = replay.table_at("map", step)
    objects: dict[int, ObjectState] = replay.table_at("object", step)
    pages: dict[int, PageState] = replay.table_at("page", step)
    resident: dict[int, list[int]] = defaultdict(list)
    for state in pages.values():
        if state.object is not None:
            resident[state.object].append(state.pindex)

    def box(object_id: int) -> ObjectBox | None:
        state = objects.get(object_id)
        if state is None:
            return None
        return ObjectBox(
            id=object_id,
            type=object_type_words(state.type),
            size_pages=state.size,
            resident=len(resident.get(object_id, ())),  # counted from the pages the log shows, at this step
            refs=state.refs,
            extra=state.path or "",
            pindexes=_ranges(resident.get(object_id, [])),
            changed=("object", object_id) in changed_keys,
        )

    # Every live process's map (each named "pid N" by exec or fork), the running process's first: after fork the
    # parent's and the child's entries point at the same objects, which is what copy-on-write is about.
    listed = {key.vmspace for key in maps}
    own = f"pid {pid}"
    rows = []
    for key, entry in maps.items():
        map_name = key.vmspace
        chain: list[ObjectBox] = []
        object_id = entry.object
        seen = set()
        while object_id is not None and object_id not in seen and len(chain) < 8:
            seen.add(object_id)
            shown = box(object_id)
            if shown is None:
                break
            chain.append(shown)
            object_id = objects[object_id].backing
        rows.append(
            EntryRow(
                start=entry.start,
                end=entry.end,
                size_kib=(entry.end - entry.start) >> 10,
                protection=protection_words(entry.protection),
                max_protection=protection_words(entry.max_protection),
                inherit=inheritance_words(entry.inheritance),
                flags=entry_flag_words(entry.eflags),
                chain=tuple(chain),
                changed=("map", key) in changed_keys,
                map_name=map_name if len(listed) > 1 else "",
            )
        )
    rows.sort(key=lambda row: (row.map_name != own and len(listed) > 1, row.map_name, row.start))
    changed_pages = {key for kind, key in changed_keys if kind == "page"}
    grid, kernel_frames = frame_grid(pages, changed_pages)
    faults = []
    total = 0
    for kind in FAULT_KINDS:
        user_steps, kernel_steps = modes.get(kind, ([], []))
        user, kernel = LogIndex.count_until(user_steps, step), LogIndex.count_until(kernel_steps, step)
        total += user + kernel
        faults.append((kind, user, kernel))
    return VmView(pid, tuple(rows), grid, tuple(faults), total, kernel_frames)
