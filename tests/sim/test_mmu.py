"""The MMU: four-level walks recorded level by level, the PTE bits the hardware sets, the TLB and its
invalidation, canonical addresses, SMAP/SMEP/NX, and `pagewalk` over a finished run's page tables."""

from __future__ import annotations

import pytest

from sim.machine.cpu import PSL_AC
from sim.machine.mmu import (
    PG_A,
    PG_FRAME,
    PG_G,
    PG_M,
    PG_NX,
    PG_RW,
    PG_U,
    PG_V,
    PGEX_I,
    PGEX_P,
    PGEX_U,
    PGEX_W,
    GeneralProtection,
    PageFault,
    walk_page_tables,
)
from sim.run import RunSpec, record
from sim.user import umem
from sim.vm.pagewalk import pagewalk
from sim.vm.pmap import pmap_extract, pmap_mapping, pmap_pte
from sim.vm.vm_param import DMAP_MIN_ADDRESS, KERNBASE, VM_PROT_READ
from tests.sim.vm_fixture import VmBench


@pytest.fixture
def bench():
    return VmBench()


def test_a_tlb_miss_walks_pml4_pdpt_pd_pt_in_order_and_lands_on_the_frame_the_pmap_maps(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"x")
    bench.machine.mmu.invltlb()  # reload %cr3: the TLB and the paging-structure cache are empty
    before = len(bench.events)
    pa = bench.machine.mmu.translate(va, PGEX_U)
    walk = [e.name for e in bench.events[before:] if e.kind == "walk"]
    assert walk == ["PML4E", "PDPTE", "PDE", "PTE"]
    assert pa == pmap_extract(bench.vmspace().vm_pmap, va)


def test_the_paging_structure_cache_lets_a_walk_nearby_read_only_the_pte(bench):
    va = bench.mmap_anon(2 * 4096)
    umem.store(va, b"x")
    umem.store(va + 4096, b"y")
    mmu = bench.machine.mmu
    mmu.invltlb()
    mmu.translate(va, PGEX_U)  # a full walk, which caches the PDE
    before = len(bench.events)
    mmu.translate(va + 4096, PGEX_U)
    assert [e.name for e in bench.events[before:] if e.kind == "walk"] == ["PDE cache", "PTE"]
    mmu.invlpg(va)  # INVLPG drops the paging-structure caches too
    before = len(bench.events)
    mmu.translate(va, PGEX_U)
    assert [e.name for e in bench.events[before:] if e.kind == "walk"] == ["PML4E", "PDPTE", "PDE", "PTE"]


def test_a_second_access_hits_the_tlb_and_walks_nothing(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"x")
    mmu = bench.machine.mmu
    hits, before = mmu.hits, len(bench.events)
    mmu.translate(va + 8, PGEX_U)
    assert mmu.hits == hits + 1
    assert not [e for e in bench.events[before:] if e.kind == "walk"]


def test_the_walk_sets_accessed_and_a_write_sets_dirty(bench):
    va = bench.mmap_anon(8192)
    umem.load(va, 1)  # a read fault maps the page: no D yet
    pmap = bench.vmspace().vm_pmap
    assert pmap_mapping(pmap, va) & PG_A
    assert not pmap_mapping(pmap, va) & PG_M
    table, index, _ = pmap_pte(pmap, va)
    table[index] &= ~PG_A  # as the page daemon would clear it
    bench.machine.mmu.invlpg(va)
    umem.load(va, 1)
    assert pmap_mapping(pmap, va) & PG_A
    deltas = [d for e in bench.events[-6:] for d in e.deltas if d[0] == "pte"]
    assert deltas and deltas[-1][3] & PG_A


def test_a_stale_tlb_entry_keeps_translating_until_invlpg(bench):
    """Why the kernel must invalidate: the hardware does not notice a PTE change by itself."""
    va = bench.mmap_anon(8192)
    umem.store(va, b"a")
    umem.store(va + 4096, b"b")
    mmu, pmap = bench.machine.mmu, bench.vmspace().vm_pmap
    old_pa = mmu.translate(va, PGEX_U)
    other = pmap_extract(pmap, va + 4096)
    table, index, _ = pmap_pte(pmap, va)
    table[index] = (table[index] & ~PG_FRAME) | other  # behind the TLB's back
    assert mmu.translate(va, PGEX_U) == old_pa  # stale
    mmu.invlpg(va)
    assert mmu.translate(va, PGEX_U) == other


def test_loading_cr3_drops_user_entries_but_keeps_global_kernel_ones(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"x")
    mmu = bench.machine.mmu
    kernel_va = KERNBASE + 0x200000
    mmu.translate(kernel_va, 0)
    assert mmu.cached(va) is not None
    assert mmu.cached(kernel_va) & PG_G
    bench.cpu.set("cr3", bench.vm.kernel_pmap.pm_cr3)
    assert mmu.cached(va) is None
    assert mmu.cached(kernel_va) is not None


def test_a_non_canonical_address_is_a_general_protection_fault_not_a_page_fault(bench):
    with pytest.raises(GeneralProtection):
        bench.machine.mmu.translate(0x0000800000000000, PGEX_U)
    with pytest.raises(GeneralProtection):
        bench.machine.mmu.translate(0xFFFF7FFFFFFFF000, 0)


def test_an_unmapped_page_faults_with_the_error_code_the_cpu_pushes(bench):
    with pytest.raises(PageFault) as caught:
        bench.machine.mmu.translate(0x1000, PGEX_U | PGEX_W)
    assert caught.value.err == PGEX_U | PGEX_W  # not present, write, user


def test_smap_stops_the_kernel_touching_a_user_page_unless_stac_set_rflags_ac(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"x")
    mmu = bench.machine.mmu
    with pytest.raises(PageFault) as caught:
        mmu.translate(va, 0)
    assert caught.value.err & PGEX_P  # the page is there: a protection violation
    bench.cpu.regs["rflags"] |= PSL_AC
    assert mmu.translate(va, 0) == pmap_extract(bench.vmspace().vm_pmap, va)


def test_smep_stops_the_kernel_executing_a_user_page_and_nx_stops_user_execution(bench):
    va = bench.mmap_anon(4096, prot=VM_PROT_READ | 0x2)
    umem.store(va, b"\xc3")
    mmu = bench.machine.mmu
    with pytest.raises(PageFault):
        mmu.translate(va, PGEX_I)  # supervisor fetch from a user page
    assert pmap_mapping(bench.vmspace().vm_pmap, va) & PG_NX
    with pytest.raises(PageFault):
        mmu.translate(va, PGEX_U | PGEX_I)


def test_the_kernel_is_mapped_in_every_address_space_with_large_global_pages(bench):
    physmem, cr3 = bench.machine.physmem, bench.cpu["cr3"]
    kernel = walk_page_tables(physmem, cr3, KERNBASE + 0x123456)
    assert [level["level"] for level in kernel["levels"]] == ["PML4E", "PDPTE", "PDE"]
    assert "PS" in kernel["levels"][-1]["flags"] and "G" in kernel["levels"][-1]["flags"]
    assert kernel["pa"] == 0x123456
    dmap = walk_page_tables(physmem, cr3, DMAP_MIN_ADDRESS + 0x40001234)
    assert dmap["pa"] == 0x40001234 and len(dmap["levels"]) == 2  # a 1 GiB page


def test_user_ptes_carry_present_user_and_writable_as_the_mapping_allows(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"x")
    pte = pmap_mapping(bench.vmspace().vm_pmap, va)
    assert pte & (PG_V | PG_U | PG_RW | PG_A | PG_M) == PG_V | PG_U | PG_RW | PG_A | PG_M


def test_pagewalk_of_a_finished_run_shows_each_level_and_the_physical_address():
    run = record(RunSpec("getpid"))
    pid = next(iter(run.page_tables))
    text = pagewalk(run, 0x401000, pid)
    assert [level["level"] for level in text["levels"]] == ["PML4E", "PDPTE", "PDE", "PTE"]
    assert set(text) >= {"va", "levels"} and ("pa" in text or "fault" in text)
    hole = pagewalk(run, 0x10000000, pid)
    assert "fault" in hole and "not present" in hole["fault"]
    assert all(set(level) >= {"level", "index", "entry", "flags"} for level in hole["levels"])
