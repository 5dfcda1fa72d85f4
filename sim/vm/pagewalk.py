"""`trapscope pagewalk`: walk one virtual address through a finished run's page tables, as the MMU would.

The run keeps each process's page-table pages as they were when it exited (or when the run ended), so a
student can ask where any address led: each level's index, entry and flags, then the physical address, or
the level where the walk stopped and why.
"""

from __future__ import annotations

from sim.machine.mmu import walk_page_tables


class PagewalkError(ValueError):
    """The walk cannot be made as asked; the message says why."""


def pagewalk(run, va: int, pid: int | None = None) -> dict:
    """{"va", "pid", "levels": [{"level", "index", "entry", "flags", "table"}], and "pa" or "fault"}."""
    tables = getattr(run, "page_tables", None) or {}
    if not tables:
        raise PagewalkError("the run kept no page tables (no process had an address space)")
    if pid is None:
        pid = min(tables)
    if pid not in tables:
        known = ", ".join(str(p) for p in sorted(tables))
        raise PagewalkError(f"no process {pid} in this run (processes: {known})")
    if not 0 <= va < 1 << 64:
        raise PagewalkError(f"{va:#x} is not a 64-bit address")
    snapshot = tables[pid]
    result = walk_page_tables(snapshot, snapshot.cr3, va)
    result["pid"] = pid
    result["cr3"] = snapshot.cr3
    return result


def format_pagewalk(result: dict) -> str:
    """The walk as text: one line per level, then the physical address or the reason it failed."""
    lines = [f"va {result['va']:#018x} in pid {result['pid']}, %cr3 = {result['cr3']:#x}"]
    for level in result["levels"]:
        lines.append(
            f"  {level['level']:<6} [{level['index']:3d}] at {level['table'] + 8 * level['index']:#012x}: "
            f"{level['entry']:#018x}  {' '.join(level['flags']) or '-'}"
        )
    if "pa" in result:
        lines.append(f"  -> pa {result['pa']:#x} ({result['page_size'] // 1024} KiB page)")
    else:
        lines.append(f"  -> no translation: {result['fault']}")
    return "\n".join(lines)
