"""Memory access by simulated user programs: loads, stores and instruction fetches in ring 3, through the MMU.

A simulated program's memory traffic goes through here, one page at a time, as the CPU's would: each page is
translated (TLB, or a page walk), and an access the page tables do not allow raises #PF, which the kernel handles
(Xpage -> trap -> trap_pfault -> vm_fault) before the access is retried, exactly as an x86 re-executes the
faulting instruction after IRETQ. A fault the kernel cannot resolve becomes SIGSEGV for the process.

Costs: each byte stored or loaded at its level of the memory hierarchy (sim/machine/memhier.py), billed to user
time; the faults bill their own (system) time.
"""

from __future__ import annotations

from sim.core.events import UserAccess, UserTouch
from sim.core.pcpu import pcpu
from sim.kern.fastforward import memset_pages_unrecorded, not_present_fault_unrecorded
from sim.kern.trap_pfault import user_fault
from sim.machine.fastforward import translate_unrecorded
from sim.machine.mmu import NOT_PRESENT, PGEX_I, PGEX_U, PGEX_W, GeneralProtection, PageFault
from sim.machine.physmem import PAGE_MASK, PAGE_SIZE, frame_contents

_FAULT_BITS = PGEX_W | PGEX_U | PGEX_I  # what of an access the #PF error code reports


def _translate(va: int, access: int) -> int:
    mmu = pcpu.machine.mmu
    while True:
        try:
            pa = translate_unrecorded(mmu, va, access)
        except (PageFault, GeneralProtection) as fault:
            user_fault(fault)
            continue
        if pa != NOT_PRESENT:
            return pa
        not_present_fault_unrecorded(va, access & _FAULT_BITS)  # fast-forward: the #PF without an exception object


def _pages(va: int, length: int):
    """(va, n) chunks of [va, va + length) that do not cross a page boundary."""
    end = va + length
    while va < end:
        n = min(PAGE_SIZE - (va & PAGE_MASK), end - va)
        yield va, n
        va += n


def store(va: int, data: bytes | bytearray | memoryview, what: str = "store") -> None:
    """Write data at user address va."""
    machine = pcpu.machine
    log, physmem, caches = machine.log, machine.physmem, machine.caches
    view = memoryview(data).cast("B")
    off = 0
    for page_va, n in _pages(va, len(view)):
        pa = _translate(page_va, PGEX_W | PGEX_U)
        if log.recording:
            old = frame_contents(physmem, pa >> 12)
        physmem.write(pa, view[off : off + n])
        log.now += caches.store_ps(pa, n) // 1000
        if log.recording:
            log.delta(("frame", pa >> 12, old, frame_contents(physmem, pa >> 12)))
            log.emit("user", what, UserAccess("store", n, page_va, pa & ~PAGE_MASK, 0))
        else:
            log.emit("user", what)
        off += n


def memset(va: int, byte: int, length: int, what: str = "memset") -> None:
    """Set length bytes at user address va to byte (page by page, with no host bytes for whole pages)."""
    machine = pcpu.machine
    log, physmem, caches = machine.log, machine.physmem, machine.caches
    byte &= 0xFF
    end = va + length
    while va < end:  # _pages(va, length), inline: a big memset is the fast-forward's hottest loop
        if not log.recording and not va & PAGE_MASK and end - va >= PAGE_SIZE:
            # Fast-forward: whole pages in one loop (the same work page by page), up to a page it leaves here.
            va = memset_pages_unrecorded(va, end & ~PAGE_MASK, byte)
            if va >= end:
                break
        n = PAGE_SIZE - (va & PAGE_MASK)
        if n > end - va:
            n = end - va
        pa = _translate(va, PGEX_W | PGEX_U)
        if log.recording:
            old = frame_contents(physmem, pa >> 12)
            physmem.fill(pa, byte, n)
            log.now += caches.store_ps(pa, n) // 1000
            log.delta(("frame", pa >> 12, old, frame_contents(physmem, pa >> 12)))
            log.emit("user", what, UserAccess("fill", n, va, pa & ~PAGE_MASK, byte))
        else:
            physmem.fill(pa, byte, n)
            log.now += caches.store_ps(pa, n) // 1000
            log.emit("user", what)
        va += n


def load(va: int, length: int, what: str = "load") -> bytes:
    """Read length bytes at user address va."""
    machine = pcpu.machine
    log, physmem, caches = machine.log, machine.physmem, machine.caches
    out = bytearray(length)
    off = 0
    for page_va, n in _pages(va, length):
        pa = _translate(page_va, PGEX_U)
        physmem.read_into(pa, n, out, off)
        log.now += caches.load_ps(pa, n) // 1000
        log.emit("user", what, UserAccess("load", n, page_va, pa & ~PAGE_MASK, 0) if log.recording else None)
        off += n
    return bytes(out)


def touch(va: int, length: int = 1, write: bool = False, what: str = "touch") -> None:
    """One access per page of [va, va + length): what a loop striding through a buffer faults in."""
    machine = pcpu.machine
    log = machine.log
    access = PGEX_U | (PGEX_W if write else 0)
    for page_va, _ in _pages(va, length):
        pa = _translate(page_va, access)
        log.now += machine.profile.user_insn_ns
        log.emit("user", what, UserTouch("write" if write else "read", page_va, pa) if log.recording else None)


def fetch(va: int) -> int:
    """An instruction fetch at va (NX pages fault): the physical address fetched from."""
    pa = _translate(va, PGEX_U | PGEX_I)
    log = pcpu.machine.log
    log.emit("user", "fetch", UserTouch("fetch", va, pa) if log.recording else None)
    return pa


def load_word(va: int) -> int:
    return int.from_bytes(load(va, 8), "little")


def store_word(va: int, value: int) -> None:
    store(va, (value & ((1 << 64) - 1)).to_bytes(8, "little"))
