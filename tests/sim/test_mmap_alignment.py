"""Anonymous mmap as FreeBSD 11's vm_map_find places it: VMFS_OPTIMAL_SPACE without an object becomes
VMFS_ANY_SPACE, so the mapping lands at the first free address, unaligned; only MAP_ALIGNED_SUPER (or a file's
object) asks for a superpage boundary. So jemalloc's chunk_alloc_mmap takes its map, unmap, map-larger and trim
path, and dd makes the mmap/munmap calls it makes on FreeBSD 11."""

from __future__ import annotations

from sim.kern.vm_mmap import MAP_ALIGNED_SUPER
from sim.run import RunSpec, record
from sim.user.libc import Libc
from tests.sim.procutil import run_program

PROT_RW, MAP_PRIVATE_ANON = 0x3, 0x1002
SUPERPAGE = 2 << 20
CHUNK = 2 << 20


def two_mappings(libc: Libc, argv, env) -> int:
    first = libc.syscall("mmap", 0, 4096, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    second = libc.syscall("mmap", 0, SUPERPAGE, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    aligned = libc.syscall("mmap", 0, SUPERPAGE, PROT_RW, MAP_PRIVATE_ANON | MAP_ALIGNED_SUPER, -1, 0)
    return 0 if (second, second % SUPERPAGE != 0, aligned % SUPERPAGE) == (first + 4096, True, 0) else 1


def test_an_anonymous_mapping_takes_the_first_free_address_unless_asked_to_align():
    assert run_program(two_mappings).exit_status == 0


def calls(run, names=("mmap", "munmap")) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, arguments, return value) of each call, in order."""
    events, found = run.events, []
    for i, e in enumerate(events):
        if e.kind == "syscall" and e.name in names:
            result = next(events[k].data for k in range(i, len(events)) if events[k].kind == "sysret")
            found.append((e.name, e.data.values, result.retval))
    return found


def test_jemalloc_maps_unmaps_maps_larger_and_trims_to_align_its_first_chunk():
    run = record(RunSpec("dd if=/dev/zero of=/dev/null bs=1m count=1 status=none"))
    seq = calls(run)
    first_chunk = next(i for i, (name, args, _) in enumerate(seq) if name == "mmap" and args[1] == CHUNK)
    (_, _, tried), unmapped, (_, larger, base), lead, trail = seq[first_chunk : first_chunk + 5]
    assert tried % CHUNK and unmapped == ("munmap", (tried, CHUNK), 0)  # misaligned: given back at once
    assert larger[1] == 2 * CHUNK - 4096  # size + alignment - PAGE_SIZE, so an aligned chunk fits inside
    aligned = (base + CHUNK - 1) & ~(CHUNK - 1)
    assert lead == ("munmap", (base, aligned - base), 0)
    assert trail == ("munmap", (aligned + CHUNK, base + larger[1] - aligned - CHUNK), 0)
    assert run.syscalls_by_name["munmap"] >= 3
