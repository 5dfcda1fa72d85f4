"""Property tests of the VM system (hypothesis): random sequences of mmap, munmap, mprotect, minherit, fork, exit
and writes, checked after every step against a plain model of what each process should see.

- every mapped virtual address translates to the frame the VM layer says holds its data;
- the page tables never grant more than the map entries allow, and map nothing outside them;
- copy-on-write keeps parent and child data independent (INHERIT_SHARE keeps it shared);
- the TLB never holds a translation the page tables no longer give.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.kern.kern_sig as kern_sig
from sim.core.pcpu import pcpu
from sim.kern.vm_mmap import vm_map_fixed
from sim.machine.cpu import KERNEL_CPL, USER_CPL
from sim.machine.mmu import PG_FRAME, PG_RW, PG_U, PG_V, PGEX_U, PGEX_W, walk_page_tables
from sim.user import umem
from sim.vm.pmap import pmap_mapping
from sim.vm.vm_map import vm_map_delete, vm_map_inherit, vm_map_lookup_entry, vm_map_protect, vmspace_free
from sim.vm.vm_object import vm_object_lookup_page
from sim.vm.vm_param import (
    MAP_ENTRY_NEEDS_COPY,
    OFF_TO_IDX,
    VM_INHERIT_COPY,
    VM_INHERIT_NONE,
    VM_INHERIT_SHARE,
    VM_PROT_ALL,
    VM_PROT_NONE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from tests.sim.vm_fixture import VmBench

PAGE = 4096
SLOTS = 4
SLOT_PAGES = 6
BASE = 0x10000000
PROTS = (VM_PROT_NONE, VM_PROT_READ, VM_PROT_READ | VM_PROT_WRITE, VM_PROT_ALL, VM_PROT_READ | 0x4)


def slot_va(slot: int, page: int = 0) -> int:
    return BASE + slot * 0x200000 + page * PAGE


class Cell:
    """One page's contents as the model sees it; processes sharing a page share the cell."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


class Model:
    """What each process should see: per page, its protection, inheritance and contents."""

    def __init__(self) -> None:
        self.procs: list[dict[int, list]] = [{}]  # per process: va -> [prot, inheritance, Cell]


page_range = st.tuples(st.integers(0, SLOTS - 1), st.integers(0, SLOT_PAGES - 1), st.integers(1, SLOT_PAGES))
op = st.one_of(
    st.tuples(st.just("mmap"), page_range, st.sampled_from(PROTS)),
    st.tuples(st.just("munmap"), page_range),
    st.tuples(st.just("mprotect"), page_range, st.sampled_from(PROTS)),
    st.tuples(st.just("minherit"), page_range, st.sampled_from((VM_INHERIT_SHARE, VM_INHERIT_COPY, VM_INHERIT_NONE))),
    st.tuples(st.just("write"), page_range, st.integers(1, 255)),
    st.tuples(st.just("fork")),
    st.tuples(st.just("switch"), st.integers(0, 3)),
    st.tuples(st.just("exit"), st.integers(0, 3)),
)


@pytest.fixture(autouse=True)
def no_signals(monkeypatch):
    def trapsignal(td, sig, code, addr=0):
        raise AssertionError(f"unexpected signal {sig} at {addr:#x}: the model said this access was allowed")

    monkeypatch.setattr(kern_sig, "trapsignal", trapsignal)


def kernel(fn, *args):
    cpu = pcpu.machine.cpu
    cpu.regs["cpl"] = KERNEL_CPL
    try:
        return fn(*args)
    finally:
        cpu.regs["cpl"] = USER_CPL


def pages(rng) -> list[int]:
    slot, first, count = rng
    return [slot_va(slot, p) for p in range(first, min(SLOT_PAGES, first + count))]


def apply(bench: VmBench, model: Model, procs: list, current: int, step) -> int:
    """Do one step on the simulator and the model; returns the index of the process now running."""
    kind = step[0]
    mine = model.procs[current]
    map = bench.vmspace().vm_map
    if kind == "mmap":
        vas = pages(step[1])
        kernel(vm_map_fixed, map, None, 0, vas[0], len(vas) * PAGE, step[2], VM_PROT_ALL, 0)
        for va in vas:
            mine[va] = [step[2], VM_INHERIT_COPY, Cell(0)]
    elif kind == "munmap":
        vas = pages(step[1])
        kernel(vm_map_delete, map, vas[0], vas[-1] + PAGE)
        for va in vas:
            mine.pop(va, None)
    elif kind == "mprotect":
        vas = pages(step[1])
        kernel(vm_map_protect, map, vas[0], vas[-1] + PAGE, step[2], False)
        for va in vas:
            if va in mine:
                mine[va][0] = step[2]
    elif kind == "minherit":
        vas = pages(step[1])
        kernel(vm_map_inherit, map, vas[0], vas[-1] + PAGE, step[2])
        for va in vas:
            if va in mine:
                mine[va][1] = step[2]
    elif kind == "write":
        for va in pages(step[1]):
            if va in mine and mine[va][0] & VM_PROT_WRITE:
                umem.store(va + (va >> 12) % 64, bytes([step[2]]))
                mine[va][2].value = step[2]
    elif kind == "fork" and len(procs) < 4:
        procs.append(bench.fork())
        child = {}
        for va, (prot, inherit, cell) in mine.items():
            if inherit == VM_INHERIT_SHARE:
                child[va] = [prot, inherit, cell]
            elif inherit == VM_INHERIT_COPY:
                child[va] = [prot, inherit, Cell(cell.value)]
        model.procs.append(child)
    elif kind == "switch" and step[1] < len(procs) and procs[step[1]] is not None:
        current = step[1]
        bench.switch_to(procs[current])
    elif kind == "exit" and step[1] < len(procs) and step[1] != current and procs[step[1]] is not None:
        td = procs[step[1]]
        kernel(vmspace_free, td.td_proc.p_vmspace)
        td.td_proc.p_vmspace = None
        procs[step[1]] = None
        model.procs[step[1]] = {}
    return current


def check(bench: VmBench, model: Model, procs: list, current: int) -> None:
    physmem, mmu = bench.machine.physmem, bench.machine.mmu
    # The TLB never keeps a translation the tables no longer give (or more rights than they give).
    for va, cached in mmu.entries():
        walk = walk_page_tables(physmem, bench.cpu["cr3"], va)
        assert "pa" in walk, f"TLB holds {va:#x}, which no longer translates"
        assert walk["pa"] & PG_FRAME == cached & PG_FRAME
        if cached & PG_RW:
            assert "RW" in walk["levels"][-1]["flags"]
    # The paging-structure cache only remembers page tables the PDEs still point at.
    for region, cached in list(mmu.pde_cache.items()):
        walk = walk_page_tables(physmem, bench.cpu["cr3"], region << 21)
        pde = walk["levels"][2] if len(walk["levels"]) > 2 else None
        assert pde is not None and "P" in pde["flags"], f"the PDE cache holds {region << 21:#x}, no longer mapped"
        assert pde["entry"] & PG_FRAME == cached & PG_FRAME
    for index, td in enumerate(procs):
        if td is None:
            continue
        vm = td.td_proc.p_vmspace
        map, pmap = vm.vm_map, vm.vm_pmap
        # Every valid user PTE lies in an entry, grants no more than it, and maps the page the objects give.
        for va in {slot_va(s, p) for s in range(SLOTS) for p in range(SLOT_PAGES)}:
            pte = pmap_mapping(pmap, va)
            entry = vm_map_lookup_entry(map, va)
            if not pte & PG_V:
                continue
            assert entry is not None, f"pid {td.td_proc.p_pid}: {va:#x} is mapped outside every map entry"
            assert pte & PG_U
            if pte & PG_RW:
                assert entry.protection & VM_PROT_WRITE and not entry.eflags & MAP_ENTRY_NEEDS_COPY
            if not entry.protection & VM_PROT_READ:
                raise AssertionError(f"{va:#x} is mapped though its entry allows no access")
            m, holder = vm_object_lookup_page(entry.object, OFF_TO_IDX(va - entry.start + entry.offset))
            assert m is not None and pte & PG_FRAME == m.phys_addr
            if pte & PG_RW:
                assert holder is entry.object  # a writable mapping is never of a page a shadow still shares
        # What the process reads is what the model says it wrote.
        bench.switch_to(td)
        for va, (prot, _, cell) in model.procs[index].items():
            if prot & VM_PROT_READ:
                assert umem.load(va + (va >> 12) % 64, 1)[0] == cell.value, f"pid {td.td_proc.p_pid} at {va:#x}"
                pa = mmu.translate(va, PGEX_U)
                assert pa == pmap_mapping(pmap, va) & PG_FRAME  # the mapped VA reaches the VM's frame
        for va, (prot, _, _) in model.procs[index].items():
            if pmap_mapping(pmap, va) & PG_RW:
                assert prot & VM_PROT_WRITE
                assert mmu.translate(va, PGEX_U | PGEX_W) == pmap_mapping(pmap, va) & PG_FRAME
    bench.switch_to(procs[current])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=25))
def test_random_vm_operations_keep_page_tables_tlb_and_data_consistent(steps):
    bench = VmBench(record=0)
    model = Model()
    procs = [bench.td]
    current = 0
    for step in steps:
        current = apply(bench, model, procs, current, step)
        check(bench, model, procs, current)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(1, 255)), min_size=1, max_size=40))
def test_any_touched_address_translates_to_the_frame_the_vm_object_holds(writes):
    bench = VmBench(record=0)
    va = bench.mmap_anon(64 * PAGE)
    for page, value in writes:
        umem.store(va + page * PAGE + value, bytes([value]))
    entry = vm_map_lookup_entry(bench.vmspace().vm_map, va)
    for page in {p for p, _ in writes}:
        m = entry.object.memq[page]
        assert bench.machine.mmu.translate(va + page * PAGE + 5, PGEX_U) == m.phys_addr + 5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("write", "fork_write", "parent_write")), st.integers(0, 3),
                          st.integers(1, 255)), min_size=1, max_size=20))  # fmt: skip
def test_cow_keeps_parent_and_child_independent(steps):
    bench = VmBench(record=0)
    va = bench.mmap_anon(4 * PAGE)
    parent = bench.td
    expected = {parent: [0] * 4}
    children = []
    for kind, page, value in steps:
        if kind == "fork_write" and len(children) < 3:
            child = bench.fork()
            children.append(child)
            expected[child] = list(expected[parent])
            bench.switch_to(child)
            umem.store(va + page * PAGE, bytes([value]))
            expected[child][page] = value
            bench.switch_to(parent)
        else:
            umem.store(va + page * PAGE, bytes([value]))
            expected[parent][page] = value
    for td, values in expected.items():
        bench.switch_to(td)
        assert [umem.load(va + p * PAGE, 1)[0] for p in range(4)] == values
