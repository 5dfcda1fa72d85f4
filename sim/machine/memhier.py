"""The memory hierarchy: what a byte costs to move depends on where it is (L1, L2, maybe L3, or DRAM).

A profile lists its levels (`MemLevel`), caches first, memory last. The caches are modelled as fully associative
LRU lists of 4 KiB blocks, one list per level, inclusive: a block is at the smallest level that still holds it,
and a touch brings it into every cache. Tracking each block's bytes in use (a 32-byte buffer does not fill a
4 KiB block) keeps small buffers small. By the LRU inclusion property this is the stack-distance model: a
buffer touched again after the program has touched more than a level's size of other data comes from the next
level down. So a copy loop's cost follows its working set (its user buffers, the kernel buffer between them)
with no figure of the result in it: small buffers copy at L1 speed, a working set past L2 at DRAM speed.

Blocks are named by physical address (user pages: their frame) or, for kernel buffers the simulator keeps as
host bytes (a pipe's ring, mbuf clusters), by a kernel address from `kernel_buffer`, which reuses the last freed
buffer of a size as UMA does. Not modelled: associativity conflicts, line granularity within a block, prefetchers
(their effect is in the levels' measured bandwidths), other CPUs' traffic.

A level that replaces a random line on a miss (the Cortex-A8's caches: `random_replacement`) does not fall off
LRU's cliff: a loop over a working set a little larger than the cache still hits mostly. Such a level also keeps
the blocks it lost, in ghost segments up to GHOST_SPAN times its size, so a touch knows roughly how far beyond
the cache its reuse distance r (in cache sizes) was; for a loop the steady state misses a fraction m with
m = 1 - exp(-m * r) (each miss evicts a random line: a line survives the m*r*lines misses between two uses of
it with probability exp(-m*r)), and the touch pays the expected cost of hitting or going one level down.

Non-temporal stores (pagezero and pagecopy use movnti on FreeBSD 11/amd64) bypass the caches: `evict`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

BLOCK_SHIFT = 12
BLOCK_SIZE = 1 << BLOCK_SHIFT
KERNEL_BUFFERS = 1 << 52  # kernel buffers' cache addresses start above any physical address
ZERO_PAGE = KERNEL_BUFFERS - BLOCK_SIZE  # zero_region: one physical page mapped 512 times (kmem_init_zero_region)
# A small kernel structure a copy routine moves (a struct stat, a sigaction): on the kernel stack, always hot.
KERNEL_STACK = ZERO_PAGE - BLOCK_SIZE


@dataclass(frozen=True)
class MemLevel:
    """One level: its size (0 for memory, the last level) and what a copy loop pays per byte it reads from or
    writes to this level, in picoseconds (1000 / the level's bandwidth in GB/s)."""

    name: str
    size: int
    read_ps: int
    write_ps: int
    source: str  # where the figures come from
    random_replacement: bool = False  # a miss evicts a random line (else the least recently used)


GHOST_SEGMENTS = (1.5, 2.0, 3.0)  # a random-replacement level tracks reuse distances up to 3 sizes, in these steps


def _loop_miss_ratio(r: float) -> float:
    """The steady-state miss ratio of a loop whose reuse distance is r cache sizes, under random replacement: the
    root of m = 1 - exp(-m * r) in (0, 1], or 0 when r <= 1 (the loop fits)."""
    if r <= 1:
        return 0.0
    m = 1.0
    for _ in range(200):
        m = 1 - math.exp(-m * r)
    return m


# The hit probability of a touch found in ghost segment k (its reuse distance between two segment bounds).
_GHOST_HIT = tuple(
    1 - _loop_miss_ratio((low + high) / 2) for low, high in zip((1.0, *GHOST_SEGMENTS), GHOST_SEGMENTS, strict=False)
)


class MemoryHierarchy:
    """The caches' state for one machine: which 4 KiB blocks each level holds, most recently used last."""

    def __init__(self, levels: tuple[MemLevel, ...]) -> None:
        if not levels or levels[-1].size:
            raise ValueError("a memory hierarchy ends with memory (a level of size 0)")
        self.levels = levels
        self.memory = levels[-1]
        # Every cache replaces its least recently used block: per cache, largest first, [level, block -> bytes (LRU
        # first), bytes used, capacity]. touch's loop over them is the simulator's hottest outside the event log.
        self._lru = [[level, OrderedDict(), 0, level.size] for level in reversed(levels[:-1])]
        # A cache replaces a random line: per cache, its segments, each [block -> bytes (LRU first), bytes used,
        # capacity]: the cache itself, then (random replacement) the ghost segments of blocks it lost.
        self._caches = []
        if any(level.random_replacement for level in levels):
            self._lru = None
            for level in levels[:-1]:
                bounds = (1.0, *GHOST_SEGMENTS) if level.random_replacement else (1.0,)
                edges = (0.0, *bounds)
                segments = [
                    [OrderedDict(), 0, int((high - low) * level.size)] for low, high in zip(edges, bounds, strict=False)
                ]
                self._caches.append((level, segments))
        self._next_kernel = KERNEL_BUFFERS
        self._free_kernel: dict[int, list[int]] = {}  # size -> freed buffers' addresses, reused last-in first-out

    def kernel_buffer(self, size: int) -> int:
        """A cache address for a kernel buffer of `size` bytes: the one of that size freed last, as UMA's per-CPU
        buckets hand back the most recently freed item (still warm), else a new page-aligned one."""
        free = self._free_kernel.get(size)
        if free:
            return free.pop()
        base = self._next_kernel
        self._next_kernel += (size + BLOCK_SIZE - 1) & ~(BLOCK_SIZE - 1) or BLOCK_SIZE
        return base

    def free_kernel_buffer(self, addr: int, size: int) -> None:
        self._free_kernel.setdefault(size, []).append(addr)

    def touch(self, addr: int, nbytes: int) -> MemLevel:
        """Touch nbytes within the block at cache address addr: the level they came from (for a random-replacement
        level beyond its size, the expected cost of its hit or miss, as a MemLevel named for both); the block is
        now most recently used in every cache."""
        block = addr >> BLOCK_SHIFT
        if self._lru is None:
            return self._touch_with_ghosts(block, nbytes)
        found = self.memory
        for cache in self._lru:  # largest first: the smallest level that holds the block is found last
            blocks = cache[1]
            held = blocks.get(block)
            if held is None:
                blocks[block] = nbytes
                used = cache[2] + nbytes
            else:
                found = cache[0]
                blocks.move_to_end(block)
                if held >= nbytes:
                    continue
                blocks[block] = nbytes
                used = cache[2] + nbytes - held
            if used > cache[3]:  # the least recently used blocks leave
                popitem = blocks.popitem
                while used > cache[3]:
                    used -= popitem(False)[1]
            cache[2] = used
        return found

    def _touch_with_ghosts(self, block: int, nbytes: int) -> MemLevel:
        """touch, for a hierarchy with a random-replacement level: each level's segments, its ghosts included."""
        found = self.memory
        for level, segments in reversed(self._caches):
            where = self._move_to_front(segments, block, nbytes)
            if where == 0:
                found = level
            elif where > 0:  # a ghost: hit with the loop's steady-state probability, else what lies below
                hit = _GHOST_HIT[where - 1]
                read = round(hit * level.read_ps + (1 - hit) * found.read_ps)
                write = round(hit * level.write_ps + (1 - hit) * found.write_ps)
                found = MemLevel(f"{level.name}/{found.name}", 0, read, write, "expected")
        return found

    @staticmethod
    def _move_to_front(segments: list, block: int, nbytes: int) -> int:
        """Make block the most recently used of the level; returns the segment it was in (0: the cache itself), or
        -1. Each segment's overflow moves to the next; the last one's is forgotten."""
        where = -1
        for index, segment in enumerate(segments):
            held = segment[0].pop(block, None)
            if held is not None:
                segment[1] -= held
                nbytes = max(nbytes, held)
                where = index
                break
        first = segments[0]
        first[0][block] = nbytes
        first[1] += nbytes
        for index, segment in enumerate(segments):
            lru = segment[0]
            while segment[1] > segment[2]:
                moved, size = lru.popitem(last=False)
                segment[1] -= size
                if index + 1 < len(segments):
                    below = segments[index + 1]
                    below[0][moved] = size
                    below[1] += size
        return where

    def evict(self, addr: int) -> None:
        """A non-temporal store to the block: it is in no cache afterwards."""
        block = addr >> BLOCK_SHIFT
        if self._lru is not None:
            for cache in self._lru:
                held = cache[1].pop(block, None)
                if held is not None:
                    cache[2] -= held
            return
        for _level, segments in self._caches:
            for segment in segments:
                held = segment[0].pop(block, None)
                if held is not None:
                    segment[1] -= held

    def copy_ps(self, src: int, dst: int, nbytes: int) -> int:
        """Picoseconds to copy nbytes from cache address src to dst (within one block each)."""
        return nbytes * (self.touch(src, nbytes).read_ps + self.touch(dst, nbytes).write_ps)

    def store_ps(self, dst: int, nbytes: int) -> int:
        """Picoseconds to store nbytes at dst (memset, or a register store)."""
        return nbytes * self.touch(dst, nbytes).write_ps

    def load_ps(self, src: int, nbytes: int) -> int:
        return nbytes * self.touch(src, nbytes).read_ps

    def nontemporal_store_ps(self, dst: int, nbytes: int) -> int:
        """movnti: the stores go to memory, and the block leaves the caches."""
        self.evict(dst)
        return nbytes * self.memory.write_ps
