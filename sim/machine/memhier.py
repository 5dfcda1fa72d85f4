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

Non-temporal stores (pagezero and pagecopy use movnti on FreeBSD 11/amd64) bypass the caches: `evict`.
"""

from __future__ import annotations

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


class MemoryHierarchy:
    """The caches' state for one machine: which 4 KiB blocks each level holds, most recently used last."""

    def __init__(self, levels: tuple[MemLevel, ...]) -> None:
        if not levels or levels[-1].size:
            raise ValueError("a memory hierarchy ends with memory (a level of size 0)")
        self.levels = levels
        self.memory = levels[-1]
        self._caches = [(level, OrderedDict(), [0]) for level in levels[:-1]]  # level, block -> bytes, bytes used
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
        """Touch nbytes within the block at cache address addr: the level they came from; the block is now
        most recently used in every cache."""
        block = addr >> BLOCK_SHIFT
        found = self.memory
        for level, lru, used in reversed(self._caches):
            held = lru.get(block)
            if held is None:
                lru[block] = nbytes
                used[0] += nbytes
            else:
                found = level
                lru.move_to_end(block)
                if nbytes > held:
                    lru[block] = nbytes
                    used[0] += nbytes - held
            while used[0] > level.size:
                used[0] -= lru.popitem(last=False)[1]
        return found

    def evict(self, addr: int) -> None:
        """A non-temporal store to the block: it is in no cache afterwards."""
        block = addr >> BLOCK_SHIFT
        for _level, lru, used in self._caches:
            held = lru.pop(block, None)
            if held is not None:
                used[0] -= held

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
