"""Mach VM in FreeBSD: demand-zero, PG_ZERO pages, copy-on-write after fork (copy and move), inheritance,
mprotect and munmap, soft and hard faults on files, superpage promotion and demotion."""

from __future__ import annotations

import pytest

from sim.core.pcpu import pcpu
from sim.machine.mmu import PG_PS, PG_RW, PGEX_U, PGEX_W, PageFault
from sim.user import umem
from sim.vm.pmap import pmap_extract, pmap_mapping, pmap_pde
from sim.vm.vm_fault import vm_fault
from sim.vm.vm_map import (
    vm_map_delete,
    vm_map_inherit,
    vm_map_insert,
    vm_map_lookup_entry,
    vm_map_protect,
    vmspace_free,
)
from sim.vm.vm_pager import MemoryVnode, vnode_pager_alloc
from sim.vm.vm_param import (
    KERN_INVALID_ADDRESS,
    KERN_PROTECTION_FAILURE,
    MAP_COPY_ON_WRITE,
    MAP_ENTRY_COW,
    MAP_ENTRY_NEEDS_COPY,
    NBPDR,
    VM_INHERIT_NONE,
    VM_INHERIT_SHARE,
    VM_PROT_ALL,
    VM_PROT_READ,
    VM_PROT_RW,
    VM_PROT_WRITE,
)
from tests.sim.vm_fixture import VmBench


@pytest.fixture
def bench():
    return VmBench()


def enters(bench, name):
    return sum(1 for e in bench.events if e.kind == "enter" and e.name == name)


def test_the_first_touch_of_anonymous_memory_zero_fills_a_page_with_pagezero(bench):
    va = bench.mmap_anon(3 * 4096)
    assert bench.vmspace().vm_pmap.pm_resident == 0  # mmap maps nothing yet
    umem.store(va + 4096, b"x")
    cnt = bench.vm.cnt
    assert (cnt.v_vm_faults, cnt.v_zfod, cnt.v_ozfod) == (1, 1, 0)
    assert cnt.faults_user["zero_fill"] == 1
    assert enters(bench, "pagezero") >= 1
    assert [e.name for e in bench.kinds("fault")] == ["zero_fill"]
    assert umem.load(va + 4096, 2) == b"x\0"
    assert bench.vm.cnt.v_vm_faults == 1  # the second access needed no fault


def test_a_read_of_untouched_anonymous_memory_also_zero_fills(bench):
    va = bench.mmap_anon(4096)
    assert umem.load(va, 8) == bytes(8)
    assert bench.vm.cnt.v_zfod == 1


def test_each_page_faults_once_and_the_fault_path_is_freebsds(bench):
    va = bench.mmap_anon(16 * 4096)
    umem.memset(va, 0xA5, 16 * 4096)
    assert bench.vm.cnt.v_zfod == 16
    frames = [e.name for e in bench.events if e.kind == "enter"]
    first = frames.index("Xpage")
    assert frames[first : first + 5] == ["Xpage", "trap", "trap_pfault", "vm_fault", "vm_map_lookup"]
    assert "pmap_zero_page" in frames and "pmap_enter" in frames and "doreti" in frames


def test_a_page_known_to_be_zero_is_not_zeroed_again(bench):
    """Emptied page-table pages go back to the free pool all zero (PG_ZERO): a zero-fill can use one as is."""
    regions = (0x7F0000000000, 0x7E0000000000)
    for far in regions:
        bench.mmap_anon(4096, addr=far)
        umem.store(far, b"x")  # each needs a PDPT, a PD and a PT of its own
    for far in regions:
        vm_map_delete(bench.vmspace().vm_map, far, far + 4096)
    assert bench.vm.phys.zero_count >= 6
    zeroed = bench.vm.cnt.v_pagezero
    va = bench.mmap_anon(4096, addr=0x10000000)
    umem.store(va, b"y")
    cnt = bench.vm.cnt
    assert cnt.v_ozfod == 1 and cnt.v_zfod == 3
    assert cnt.v_pagezero == zeroed  # neither the page nor its (PG_ZERO) page tables needed pagezero


def test_fork_shares_pages_copy_on_write_and_both_sides_stay_independent(bench):
    va = bench.mmap_anon(2 * 4096)
    umem.store(va, b"parent")
    child = bench.fork()
    parent = bench.td
    pmap = bench.vmspace().vm_pmap
    assert not pmap_mapping(pmap, va) & PG_RW  # fork write-protected the parent's page
    entry = vm_map_lookup_entry(bench.vmspace().vm_map, va)
    assert entry.eflags & (MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY) == MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY
    bench.switch_to(child)
    assert umem.load(va, 6) == b"parent"  # a read needs no copy: the shared page is mapped read-only
    assert bench.vm.cnt.v_cow_faults == 0
    umem.store(va, b"child!")
    assert bench.vm.cnt.v_cow_faults == 1 and bench.vm.cnt.faults_user["cow"] == 1
    bench.switch_to(parent)
    assert umem.load(va, 6) == b"parent"
    umem.store(va, b"PARENT")
    bench.switch_to(child)
    assert umem.load(va, 6) == b"child!"
    assert pmap_extract(bench.vmspace(child).vm_pmap, va) != pmap_extract(bench.vmspace(parent).vm_pmap, va)


def test_when_the_other_side_is_gone_a_cow_fault_moves_the_page_instead_of_copying(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"data")
    child = bench.fork()
    copies = bench.vm.cnt.v_pagecopy
    child.td_proc.p_vmspace.vm_refcnt = 1
    vmspace_free(child.td_proc.p_vmspace)  # the child exits without writing
    umem.store(va, b"DATA")
    cnt = bench.vm.cnt
    assert cnt.v_pagecopy == copies  # nothing copied ...
    assert cnt.v_cow_faults == 1 or cnt.v_vm_faults >= 1  # ... the write still had to fault to regain RW
    assert umem.load(va, 4) == b"DATA"


def test_cow_optim_moves_the_page_when_the_backing_object_has_no_other_user(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"data")
    child = bench.fork()
    bench.switch_to(child)
    umem.store(va, b"kid")  # the child shadows first: it copies
    bench.switch_to(bench.td)
    assert bench.vm.cnt.v_cow_faults == 1 and bench.vm.cnt.v_cow_optim == 0
    vmspace_free(child.td_proc.p_vmspace)
    umem.store(va, b"DATA")
    assert bench.vm.cnt.v_cow_faults + bench.vm.cnt.v_cow_optim >= 1
    assert umem.load(va, 4) == b"DATA"


def test_a_second_shadow_below_an_only_user_moves_rather_than_copies(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"data")
    child = bench.fork()
    bench.switch_to(child)
    umem.load(va, 1)  # the child only reads
    bench.switch_to(bench.td)
    umem.store(va, b"P")  # parent shadows; the original object still has the child's reference: copy
    assert (bench.vm.cnt.v_cow_faults, bench.vm.cnt.v_cow_optim) == (1, 0)
    bench.switch_to(child)
    umem.store(va, b"C")  # now the child is the original's only user and has one shadow... or is it?
    cnt = bench.vm.cnt
    assert cnt.v_cow_faults + cnt.v_cow_optim == 2
    assert umem.load(va, 4) == b"Cata"
    bench.switch_to(bench.td)
    assert umem.load(va, 4) == b"Pata"


def test_inherit_share_makes_the_childs_writes_visible_to_the_parent(bench):
    va = bench.mmap_anon(4096)
    vm_map_inherit(bench.vmspace().vm_map, va, va + 4096, VM_INHERIT_SHARE)
    umem.store(va, b"start")
    child = bench.fork()
    bench.switch_to(child)
    umem.store(va, b"CHILD")
    bench.switch_to(bench.td)
    assert umem.load(va, 5) == b"CHILD"
    assert bench.vm.cnt.v_cow_faults == 0


def test_inherit_none_leaves_the_range_out_of_the_child(bench):
    va = bench.mmap_anon(4096)
    vm_map_inherit(bench.vmspace().vm_map, va, va + 4096, VM_INHERIT_NONE)
    child = bench.fork()
    assert vm_map_lookup_entry(child.td_proc.p_vmspace.vm_map, va) is None
    bench.machine.cpu.regs["cpl"] = 0
    assert vm_fault(child.td_proc.p_vmspace.vm_map, va, VM_PROT_READ) == KERN_INVALID_ADDRESS


def test_mprotect_read_only_removes_write_from_the_pte_and_a_write_then_fails(bench):
    va = bench.mmap_anon(4096)
    umem.store(va, b"x")
    map = bench.vmspace().vm_map
    assert vm_map_protect(map, va, va + 4096, VM_PROT_READ, False) == 0
    assert not pmap_mapping(map.pmap, va) & PG_RW
    with pytest.raises(PageFault):
        bench.machine.mmu.translate(va, PGEX_U | PGEX_W)  # the TLB was invalidated: no stale RW entry
    bench.machine.cpu.regs["cpl"] = 0
    assert vm_fault(map, va, VM_PROT_WRITE) == KERN_PROTECTION_FAILURE
    assert bench.vm.cnt.faults_kernel["protection"] == 1
    assert vm_map_protect(map, va, va + 4096, VM_PROT_ALL, False) == 0
    entry = vm_map_lookup_entry(map, va)
    entry.max_protection = VM_PROT_READ
    assert vm_map_protect(map, va, va + 4096, VM_PROT_RW, False) == KERN_PROTECTION_FAILURE


def test_munmap_frees_the_pages_and_the_emptied_page_tables(bench):
    va = bench.mmap_anon(8 * 4096, addr=0x7E0000000000)
    umem.memset(va, 1, 8 * 4096)
    free_before = bench.vm.free_count()
    pmap = bench.vmspace().vm_pmap
    assert pmap.pm_resident == 8
    vm_map_delete(bench.vmspace().vm_map, va, va + 8 * 4096)
    assert pmap.pm_resident == 0
    assert bench.vm.free_count() == free_before + 8 + 3  # 8 pages, and their PT, PD and PDPT pages


def test_a_file_in_the_page_cache_maps_with_soft_faults_and_one_not_cached_with_hard_faults(bench):
    for cached, kind in ((True, "soft"), (False, "hard")):
        vp = MemoryVnode(f"/data/{kind}", 4 * 4096, lambda pindex: pindex + 1, cached=cached)
        object = vnode_pager_alloc(vp)
        start = 0x900000000 if cached else 0xA00000000
        map = bench.vmspace().vm_map
        assert vm_map_insert(map, object, 0, start, start + 4 * 4096, VM_PROT_READ, VM_PROT_ALL, MAP_COPY_ON_WRITE) == 0
        wall, sys = bench.machine.now, bench.machine.sys_ns
        assert umem.load(start + 2 * 4096, 2) == b"\x03\x03"
        assert bench.vm.cnt.faults_user[kind] == 1
        if kind == "hard":
            assert bench.vm.cnt.v_io_faults == 1
            # the thread slept for the disk: wall-clock time, not system time
            assert bench.machine.now - wall > 4 * (bench.machine.sys_ns - sys)


def test_a_soft_fault_prefaults_resident_neighbours(bench):
    vp = MemoryVnode("/data/text", 16 * 4096, lambda pindex: 0xCC, cached=True)
    start = 0x900000000
    map = bench.vmspace().vm_map
    vm_map_insert(map, vnode_pager_alloc(vp), 0, start, start + 16 * 4096, VM_PROT_READ, VM_PROT_ALL, MAP_COPY_ON_WRITE)
    umem.load(start + 8 * 4096, 1)
    assert bench.vm.cnt.v_vm_faults == 1
    assert bench.vmspace().vm_pmap.pm_resident == 1 + 4 + 4  # the page, 4 behind and 4 ahead
    umem.load(start + 5 * 4096, 1)
    assert bench.vm.cnt.v_vm_faults == 1


def test_writing_a_private_file_mapping_copies_the_page_leaving_the_file_alone(bench):
    vp = MemoryVnode("/data/private", 4096, lambda pindex: 0x11, cached=True)
    object = vnode_pager_alloc(vp)
    start = 0x900000000
    vm_map_insert(bench.vmspace().vm_map, object, 0, start, start + 4096, VM_PROT_RW, VM_PROT_ALL, MAP_COPY_ON_WRITE)
    umem.store(start, b"\x22")
    assert bench.vm.cnt.faults_user["cow"] == 1
    page = object.memq[0]
    assert bench.machine.physmem.read(page.phys_addr, 1) == b"\x11"
    assert umem.load(start, 2) == b"\x22\x11"


def test_a_fully_touched_aligned_2mib_range_is_promoted_to_a_superpage(bench):
    va = bench.mmap_anon(2 * NBPDR, optimal=True)
    assert va % NBPDR == 0
    pmap = bench.vmspace().vm_pmap
    umem.memset(va, 7, NBPDR - 4096)
    assert bench.vm.cnt.pde_promotions == 0
    umem.memset(va + NBPDR - 4096, 7, 4096)
    assert bench.vm.cnt.pde_promotions == 1
    table, index, _ = pmap_pde(pmap, va)
    assert table[index] & PG_PS
    assert bench.vm.cnt.v_zfod == 512  # still one demand-zero fault per 4 KiB page
    frames = [pmap_extract(pmap, va + i * 4096) for i in range(512)]
    assert frames == [frames[0] + i * 4096 for i in range(512)] and frames[0] % NBPDR == 0
    mmu = bench.machine.mmu
    mmu.translate(va + 12345, PGEX_U)
    assert mmu.cached(va + NBPDR - 1) is not None  # one TLB entry covers all 2 MiB
    # mprotect of one page must split the superpage again
    vm_map_protect(bench.vmspace().vm_map, va + 4096, va + 8192, VM_PROT_READ, False)
    assert bench.vm.cnt.pde_demotions == 1
    assert not pmap_mapping(pmap, va + 4096) & PG_RW and pmap_mapping(pmap, va) & PG_RW
    assert umem.load(va + 4096, 1) == b"\x07"


def test_superpages_can_be_switched_off(bench):
    bench.vm.superpages_enabled = False
    va = bench.mmap_anon(NBPDR, optimal=True)
    umem.memset(va, 1, NBPDR)
    assert bench.vm.cnt.pde_promotions == 0


def test_fault_counters_are_kept_with_recording_off():
    bench = VmBench(record=0)
    va = bench.mmap_anon(64 * 4096)
    umem.memset(va, 1, 64 * 4096)
    assert bench.vm.cnt.v_zfod == 64 and not bench.events
    assert pcpu.machine.log.unrecorded > 64


def test_under_memory_pressure_the_page_daemon_swaps_anonymous_pages_out_and_faults_bring_them_back():
    bench = VmBench(mem=96 << 20, record=0)  # 32 MiB above the kernel's 64
    size = 40 << 20
    va = bench.mmap_anon(size)
    for offset in range(0, size, 4096):
        umem.store(va + offset, (offset >> 12).to_bytes(4, "little"))
    cnt = bench.vm.cnt
    assert cnt.v_pdwakeups > 0 and cnt.v_swappgsout > 0
    assert bench.vm.free_count() > bench.vm.v_free_reserved
    for offset in range(0, size, 4096 * 97):
        assert umem.load(va + offset, 4) == (offset >> 12).to_bytes(4, "little")
    assert cnt.v_swappgsin > 0 and cnt.faults_user["hard"] > 0


def _workload(record: int) -> VmBench:
    bench = VmBench(record=record)
    va = bench.mmap_anon(3 << 20, optimal=True)
    umem.memset(va, 0xA5, 3 << 20)  # every page a demand-zero fault: most are fast-forwarded when not recording
    umem.load(va + 5, 3)
    child = bench.fork()
    bench.switch_to(child)
    umem.memset(va + 4096, 1, 3 * 4096)
    bench.switch_to(bench.td)
    vm_map_delete(bench.vmspace().vm_map, va + (2 << 20), va + (3 << 20))
    vmspace_free(child.td_proc.p_vmspace)
    vmspace_free(bench.vmspace())
    return bench


def test_fast_forward_changes_nothing_but_what_is_recorded():
    """With recording off, fast-forwarded faults must leave exactly the same machine: time, rings, counters,
    memory, page tables and the number of events, as the fully recorded run."""
    slow, fast = _workload(10**7), _workload(0)
    assert fast.vm.fault_replays  # the fast path was taken
    assert not fast.events and slow.events
    for name in ("now", "user_ns", "sys_ns"):
        assert getattr(fast.machine, name) == getattr(slow.machine, name), name
    assert fast.machine.log.total == slow.machine.log.total
    assert fast.vm.cnt.summary() == slow.vm.cnt.summary()
    assert fast.machine.physmem.frames == slow.machine.physmem.frames
    assert fast.vm.free_count() == slow.vm.free_count()
    mmu_fast, mmu_slow = fast.machine.mmu, slow.machine.mmu
    assert (mmu_fast.hits, mmu_fast.misses) == (mmu_slow.hits, mmu_slow.misses)
    assert fast.td.td_frame.regs == slow.td.td_frame.regs
    assert fast.cpu.regs == slow.cpu.regs


class Signalled(Exception):
    pass


@pytest.mark.parametrize(
    ("where", "code"),
    [("read-only", 2), ("unmapped", 1), ("kernel", 1)],  # SEGV_ACCERR, SEGV_MAPERR
)
def test_a_bad_user_access_is_a_sigsegv_with_the_code_freebsd_gives(bench, monkeypatch, where, code):
    import sim.kern.kern_sig as kern_sig

    delivered = []

    def trapsignal(td, sig, ucode, addr=0):
        delivered.append((sig, ucode, addr))
        raise Signalled

    monkeypatch.setattr(kern_sig, "trapsignal", trapsignal)
    va = {"read-only": bench.mmap_anon(4096, prot=VM_PROT_READ), "unmapped": 0x1234000, "kernel": 0xFFFFFFFF80200000}
    with pytest.raises(Signalled):
        umem.store(va[where], b"x")
    assert delivered == [(kern_sig.SIGSEGV, code, va[where])]
    assert bench.td.td_frame["tf_trapno"] == 12 and bench.td.td_frame["tf_addr"] == va[where]
