"""The jemalloc-like allocator (sim/user/malloc.py): size classes, chunks from mmap, and junk filling from user
mode, which is what makes dd's buffer fault in user mode on the lecture's debug build."""

import pytest

from sim.user.malloc import CHUNKSIZE, JUNK_ALLOC, parse_conf, size_class
from tests.sim.test_rtld import FakeRuntime

MIB = 1 << 20


@pytest.mark.parametrize(
    ("request_size", "usable"),
    [(1, 8), (9, 16), (100, 112), (129, 160), (1023, 1024), (5000, 5120), (128 * 1024 - 1, 128 * 1024),
     (2 * MIB - 1, 2 * MIB), (20 * MIB - 1, 20 * MIB), (2 * 1024 * MIB - 1, 2 * 1024 * MIB)],
)  # fmt: skip
def test_size_classes_have_four_steps_per_doubling(request_size, usable):
    assert size_class(request_size) == usable


def test_conf_strings_parse_as_key_value_pairs():
    assert parse_conf("junk:false,abort:true") == ({"junk": "false", "abort": "true"}, [])
    assert parse_conf("junk") == ({}, ["junk"])


def dd_buffer(junk=True, env=None, misalign=False, size=20 * MIB - 1):
    rt = FakeRuntime(junk=junk, env=env, misalign=misalign)
    addr = rt.malloc_impl.malloc(size)
    return rt, addr


def test_dds_20_mib_buffer_gets_chunks_of_its_own_and_is_junk_filled_from_user_mode():
    rt, addr = dd_buffer()
    assert addr % CHUNKSIZE == 0
    assert (addr, JUNK_ALLOC, 20 * MIB) in rt.memsets  # every byte of the size class: 5,120 pages
    maps = [args[1] for name, args in rt.calls if name == "mmap"]
    assert maps == [CHUNKSIZE, CHUNKSIZE, 20 * MIB]  # base chunk, arena chunk (tcache, extent node), the buffer


def test_without_junk_nothing_touches_the_buffer():
    rt, addr = dd_buffer(junk=False)
    assert not [m for m in rt.memsets if m[0] <= addr < m[0] + m[2] or addr <= m[0] < addr + 20 * MIB]


def test_malloc_conf_overrides_the_builds_default():
    rt, addr = dd_buffer(junk=True, env={"MALLOC_CONF": "junk:false"})
    assert rt.malloc_impl.opt_junk is False
    assert (addr, JUNK_ALLOC, 20 * MIB) not in rt.memsets
    rt, addr = dd_buffer(junk=False, env={"MALLOC_CONF": "junk:true"})
    assert (addr, JUNK_ALLOC, 20 * MIB) in rt.memsets


def test_a_bad_conf_value_is_reported_on_stderr_and_ignored():
    rt, _ = dd_buffer(junk=True, env={"MALLOC_CONF": "junk:maybe"})
    assert rt.malloc_impl.opt_junk is True
    written = b"".join(rt.load_bytes(args[1], args[2]) for name, args in rt.calls if name == "write")
    assert b"<jemalloc>: Invalid conf value: junk:maybe" in written


def test_a_misaligned_chunk_is_unmapped_and_mapped_again_larger_then_trimmed():
    rt = FakeRuntime(misalign=True)
    rt.malloc_impl.malloc_init()
    calls = [(name, args[1]) for name, args in rt.calls if name in ("mmap", "munmap")]
    assert calls[0] == ("mmap", CHUNKSIZE) and calls[1] == ("munmap", CHUNKSIZE)
    assert calls[2] == ("mmap", 2 * CHUNKSIZE - 4096)
    trims = calls[3:]  # the lead and the trail beyond the aligned chunk, whichever are not empty
    assert trims and all(name == "munmap" for name, _ in trims)
    assert sum(size for _, size in trims) == CHUNKSIZE - 4096
    assert rt.malloc_impl.base_chunk % CHUNKSIZE == 0


def test_small_allocations_share_runs_and_are_reused_after_free():
    rt = FakeRuntime(junk=False)
    m = rt.malloc_impl
    a, b = m.malloc(100), m.malloc(100)
    assert b - a == 112  # the 112-byte class, consecutive regions of one run
    m.free(a)
    assert m.malloc(100) == a
    mmaps = sum(1 for name, _ in rt.calls if name == "mmap")
    assert mmaps == 2  # the base chunk and one arena chunk


def test_a_huge_free_returns_its_chunks_to_the_kernel():
    rt, addr = dd_buffer(junk=False)
    rt.malloc_impl.free(addr)
    assert ("munmap", (addr, 20 * MIB)) in rt.calls
