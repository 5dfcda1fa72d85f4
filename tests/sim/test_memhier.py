"""The memory hierarchy and the host's first touch (sim/machine/memhier.py, host_backing.py): what a copy or a
page zeroing costs follows from where the bytes are, and whether a virtual machine's host has backed the frame
yet; no profile holds a figure of a result."""

from __future__ import annotations

import pytest

from sim.machine.memhier import MemLevel, MemoryHierarchy
from sim.machine.profiles import PROFILES
from sim.user import umem
from sim.vm.vm_map import vm_map_delete
from tests.sim.vm_fixture import VmBench

LEVELS = (MemLevel("L1", 8192, 1, 1, ""), MemLevel("L2", 32768, 2, 3, ""), MemLevel("memory", 0, 10, 20, ""))
PAGE = 4096


def test_a_block_comes_from_the_smallest_level_that_still_holds_it():
    caches = MemoryHierarchy(LEVELS)
    assert caches.touch(0, PAGE).name == "memory"  # never touched: a compulsory miss
    assert caches.touch(0, PAGE).name == "L1"
    for block in (1, 2):  # 8 KiB of other data since: block 0 is out of the 8 KiB L1, still in L2
        caches.touch(block * PAGE, PAGE)
    assert caches.touch(0, PAGE).name == "L2"
    for block in range(1, 10):  # 36 KiB since: out of L2 too
        caches.touch(block * PAGE, PAGE)
    assert caches.touch(0, PAGE).name == "memory"


def test_small_buffers_take_only_their_bytes_of_a_cache():
    caches = MemoryHierarchy(LEVELS)
    blocks = range(100)  # 100 buffers of 64 bytes: 6.4 KiB, which fits the 8 KiB L1
    for block in blocks:
        caches.touch(block * PAGE, 64)
    assert {caches.touch(block * PAGE, 64).name for block in blocks} == {"L1"}


def test_a_copy_pays_the_read_at_the_sources_level_and_the_write_at_the_destinations():
    caches = MemoryHierarchy(LEVELS)
    caches.touch(0, PAGE)
    assert caches.copy_ps(0, 5 * PAGE, 100) == 100 * (1 + 20)  # source in L1, destination never touched
    assert caches.nontemporal_store_ps(0, PAGE) == PAGE * 20  # movnti: memory speed ...
    assert caches.touch(0, PAGE).name == "memory"  # ... and the block is in no cache afterwards


def test_kernel_buffers_reuse_the_last_freed_of_their_size_as_uma_does():
    caches = MemoryHierarchy(LEVELS)
    first, second = caches.kernel_buffer(2048), caches.kernel_buffer(2048)
    assert first != second
    caches.free_kernel_buffer(first, 2048)
    caches.free_kernel_buffer(second, 2048)
    assert caches.kernel_buffer(2048) == second


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_is_physically_consistent(name):
    """Bigger levels are slower per byte, memory is last, and zeroing a page (stores only, at memory speed) costs
    less than copying one: the lecture profile's old 67.8 us pagezero against a 0.27 us page copy was not."""
    levels = PROFILES[name].memory
    assert levels[-1].size == 0 and all(level.size for level in levels[:-1])
    assert [level.size for level in levels[:-1]] == sorted(level.size for level in levels[:-1])
    for faster, slower in zip(levels, levels[1:], strict=False):
        assert faster.read_ps <= slower.read_ps and faster.write_ps <= slower.write_ps
    memory = levels[-1]
    assert PAGE * memory.write_ps < PAGE * (memory.read_ps + memory.write_ps)
    assert all(level.source for level in levels)


def pagezero_ns(bench: VmBench) -> list[int]:
    """How long each pagezero the bench ran took, from its enter and exit events."""
    events, spans, start = bench.events, [], None
    for event in events:
        if event.name == "pagezero":
            if event.kind == "enter":
                start = event.t_ns
            elif event.kind == "exit":
                spans.append(event.t_ns - start)
    return spans


def test_on_the_lecture_machine_a_frames_first_zeroing_waits_for_the_host_and_a_reused_frame_does_not():
    bench = VmBench("lecture")
    profile, va = bench.machine.profile, 0x7E0000000000
    memory_speed = PAGE * profile.memory[-1].write_ps // 1000
    bench.mmap_anon(4 * PAGE, addr=va)
    umem.memset(va, 1, 4 * PAGE)
    first = pagezero_ns(bench)
    assert set(first[-4:]) == {memory_speed + profile.host_first_touch_ns}  # frames nobody had written
    vm_map_delete(bench.vmspace().vm_map, va, va + 4 * PAGE)  # the frames go back to the free pool ...
    bench.mmap_anon(4 * PAGE, addr=va)
    umem.memset(va, 1, 4 * PAGE)  # ... and come back: the host backs them already
    assert set(pagezero_ns(bench)[len(first) :][-4:]) == {memory_speed}


def test_on_bare_metal_zeroing_a_page_is_only_its_stores():
    bench = VmBench("modern")
    bench.mmap_anon(PAGE, addr=0x7E0000000000)
    umem.store(0x7E0000000000, b"x")
    assert pagezero_ns(bench)[-1] == PAGE * bench.machine.profile.memory[-1].write_ps // 1000


def test_a_random_replacement_cache_loses_a_loop_a_little_larger_than_itself_gradually_not_all_at_once():
    """LRU misses every block of a loop just over its size; random replacement (the Cortex-A8's) keeps most."""
    lru = (MemLevel("L1", 8 * PAGE, 1, 1, ""), MemLevel("memory", 0, 100, 100, ""))
    rnd = (MemLevel("L1", 8 * PAGE, 1, 1, "", True), MemLevel("memory", 0, 100, 100, ""))

    def loop_cost(levels, blocks: int) -> int:
        caches = MemoryHierarchy(levels)
        for _ in range(3):  # warm up
            for block in range(blocks):
                caches.touch(block * PAGE, PAGE)
        return sum(caches.touch(block * PAGE, PAGE).read_ps for block in range(blocks)) // blocks

    assert loop_cost(lru, 8) == loop_cost(rnd, 8) == 1  # fits: all hits either way
    assert loop_cost(lru, 9) == 100  # LRU's cliff
    assert 1 < loop_cost(rnd, 9) < loop_cost(rnd, 14) < loop_cost(rnd, 20) < 100  # a slope


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("stores", [3, 40, 700])  # fewer than any cache holds, more than L1 holds, more than L2
def test_the_fast_forwards_zeroed_then_stored_blocks_leave_the_caches_as_block_by_block(profile, stores):
    """sim/machine/fastforward.py's zero_then_store_unrecorded (a memset's fresh pages in one pass) against
    evict + touch of each block, after a mixed history (blocks of several sizes, some of them stored again)."""
    from sim.machine.fastforward import zero_then_store_unrecorded

    def history(caches: MemoryHierarchy) -> None:
        for i in range(3000):
            caches.touch((i * 7919 % 2000) * PAGE, (16, 4096, 1024, 64)[i % 4])

    def state(caches: MemoryHierarchy) -> list:
        if caches._lru is not None:
            return [(list(cache[1].items()), cache[2]) for cache in caches._lru]
        return [[(list(s[0].items()), s[1]) for s in segments] for _, segments in caches._caches]

    addrs = [(1900 + 3 * i) * PAGE for i in range(stores)]  # some held after the history, most not
    one_by_one, in_one_pass = MemoryHierarchy(PROFILES[profile].memory), MemoryHierarchy(PROFILES[profile].memory)
    history(one_by_one)
    history(in_one_pass)
    for addr in addrs:
        one_by_one.evict(addr)
        one_by_one.touch(addr, PAGE)
    zero_then_store_unrecorded(in_one_pass, addrs)
    assert state(in_one_pass) == state(one_by_one)
