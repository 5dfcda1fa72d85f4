"""A jemalloc-like allocator: jemalloc 4.x as FreeBSD 11's libc has it (contrib/jemalloc), reduced to what
decides which pages a program touches and which system calls it makes.

- Memory comes from the kernel in chunks of 2 MiB (opt_lg_chunk = 21), each mmap'd and chunk-aligned
  (chunk_alloc_mmap: map, and if the kernel's address is not aligned, unmap and map a larger region to trim).
- Small (<= 14 KiB) and large (<= a chunk less its header) requests are carved from an arena chunk: runs of
  pages, small runs cut into regions of one size class. Huge requests get chunks of their own, plus a small
  extent node to track them.
- Metadata (the tcache, arena structures, the chunk radix tree) lives in base chunks, also mmap'd.
- opt_junk: with junk:true each allocation is filled with 0xa5 from user mode (memset(ret, 0xa5, usize)), so
  every page of a fresh 20 MiB buffer takes a demand-zero fault *in user mode*, before the program ever uses
  it. The default follows the build: a debug -CURRENT libc (the lecture's) junk-fills; a release build does not.
  MALLOC_CONF and the /etc/malloc.conf symbolic link override it, as malloc_conf_init() reads them.

Sizes of jemalloc's own structures are approximate (they only decide which metadata pages are touched); every
count of faults and system calls follows from the requests a program makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.user.crt import Runtime

PAGE = 4096
LG_CHUNK = 21
CHUNKSIZE = 1 << LG_CHUNK  # opt_lg_chunk default (jemalloc 4.x)
CHUNK_NPAGES = CHUNKSIZE // PAGE
MAP_BIAS = 7  # pages of arena chunk header (extent node, map bits, map misc) for 2 MiB chunks; approximate
SMALL_MAXCLASS = 14336  # the largest small size class with 4 KiB pages and a 16-byte quantum
LARGE_MAXCLASS = CHUNKSIZE - MAP_BIAS * PAGE  # arena_maxrun: a large run fills at most a chunk less its header
CACHELINE = 64
EXTENT_NODE_SIZE = 128  # CACHELINE_CEILING(sizeof(extent_node_t))
TCACHE_SIZE = 60 * 1024  # tcache_t with its bins' pointer stacks (tcache_create: ~7,500 slots); approximate
BASE_BOOT_SIZE = 12 * 1024  # tcache_bin_info, arena 0 (with its 36 bins) and the arenas array; approximate
RTREE_LEAF_SPAN = 1 << (LG_CHUNK + 16)  # address range one 2^16-entry leaf of chunks_rtree covers
RTREE_LEAF_SIZE = (1 << 16) * 8

PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_PRIVATE, MAP_ANON = 0x0002, 0x1000
JUNK_ALLOC = 0xA5  # jemalloc's JEMALLOC_ALLOC_JUNK
MALLOC_CONF_LINK = "/etc/malloc.conf"


def size_class(size: int) -> int:
    """s2u(): the usable size jemalloc rounds a request up to (4 classes per doubling above 128 bytes)."""
    if size <= 8:
        return 8
    if size <= 128:
        return (size + 15) & ~15
    delta = 1 << ((size - 1).bit_length() - 3)
    return (size + delta - 1) & ~(delta - 1)


def chunk_ceiling(size: int) -> int:
    return (size + CHUNKSIZE - 1) & ~(CHUNKSIZE - 1)


def parse_conf(text: str) -> tuple[dict[str, str], list[str]]:
    """malloc_conf_next(): `key:value` pairs separated by commas; returns the pairs and the malformed ones."""
    pairs, bad = {}, []
    for item in filter(None, text.split(",")):
        key, colon, value = item.partition(":")
        if not colon or not key:
            bad.append(item)
        else:
            pairs[key] = value
    return pairs, bad


@dataclass
class Run:
    """A run of pages in an arena chunk: a large allocation, or a small bin's regions."""

    addr: int
    npages: int
    reg_size: int = 0
    nregs: int = 0
    next_reg: int = 0
    free_regs: list[int] = field(default_factory=list)


@dataclass
class ArenaChunk:
    addr: int
    next_page: int = MAP_BIAS  # first page never handed out
    free_runs: list[tuple[int, int]] = field(default_factory=list)  # (first page, npages)


class Jemalloc:
    """The malloc of one process. `rt` supplies system calls and user-mode memory access."""

    def __init__(self, rt: Runtime, junk_default: bool) -> None:
        self.rt = rt
        self.opt_junk = junk_default
        self.initialized = False
        self.base_chunk = 0
        self.base_next = 0
        self.base_end = 0
        self.chunks: list[ArenaChunk] = []
        self.bins: dict[int, Run] = {}  # size class -> current run with free regions
        self.allocations: dict[int, tuple[str, int, object]] = {}  # addr -> (kind, usize, run or chunk size)
        self.tcache = 0
        self.rtree_leaves: dict[int, int] = {}  # leaf index -> address of its node array

    # -- malloc_init_hard -----------------------------------------------------------------------------------

    def malloc_init(self) -> None:
        """Read the options, then boot base, arena 0 and its bins (malloc_init_hard_a0_locked)."""
        if self.initialized:
            return
        self.initialized = True
        rt = self.rt
        rt.step("malloc_init")
        link = rt.readlink(MALLOC_CONF_LINK)  # the options a symbolic link's target names
        if link:
            self._apply_conf(link)
        env = rt.secure_getenv("MALLOC_CONF")
        if env is not None:
            self._apply_conf(env)
        self.base_alloc(BASE_BOOT_SIZE)  # tcache_boot, arena_init(0), the arenas array

    def _apply_conf(self, text: str) -> None:
        pairs, bad = parse_conf(text)
        for item in bad:
            self.rt.fprintf_stderr(f"<jemalloc>: Conf string ends with key: {item}\n")
        for key, value in pairs.items():
            if key == "junk" and value in ("true", "false", "alloc", "free"):
                self.opt_junk = value in ("true", "alloc")
            elif key == "junk":
                self.rt.fprintf_stderr(f"<jemalloc>: Invalid conf value: {key}:{value}\n")

    # -- chunks ---------------------------------------------------------------------------------------------

    def chunk_alloc_mmap(self, size: int) -> int:
        """Map `size` bytes aligned to a chunk: try once; if misaligned, unmap and over-allocate, then trim."""
        rt = self.rt
        ret = rt.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0)
        if ret == 0:
            return 0
        if ret & (CHUNKSIZE - 1) == 0:
            return ret
        rt.munmap(ret, size)
        alloc_size = size + CHUNKSIZE - PAGE
        pages = rt.mmap(0, alloc_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0)
        if pages == 0:
            return 0
        ret = (pages + CHUNKSIZE - 1) & ~(CHUNKSIZE - 1)
        lead, trail = ret - pages, alloc_size - (ret - pages) - size
        if lead:
            rt.munmap(pages, lead)
        if trail:
            rt.munmap(ret + size, trail)
        return ret

    def base_alloc(self, size: int) -> int:
        """Metadata that is never freed, bump-allocated from base chunks; writing it touches its pages."""
        size = (size + CACHELINE - 1) & ~(CACHELINE - 1)
        if self.base_next + size > self.base_end:
            csize = chunk_ceiling(size)
            self.base_chunk = self.chunk_alloc_mmap(csize)
            if self.base_chunk == 0:
                return 0
            self.base_next, self.base_end = self.base_chunk, self.base_chunk + csize
        ret = self.base_next
        self.base_next += size
        return ret

    def chunk_register(self, chunk: int) -> None:
        """rtree_set(&chunks_rtree, chunk, node): one leaf entry per chunk; a new leaf comes from base."""
        leaf_index = chunk // RTREE_LEAF_SPAN
        leaf = self.rtree_leaves.get(leaf_index)
        if leaf is None:
            leaf = self.rtree_leaves[leaf_index] = self.base_alloc(RTREE_LEAF_SIZE)
        self.rt.store(leaf + ((chunk % RTREE_LEAF_SPAN) >> LG_CHUNK) * 8, 8)

    def arena_chunk_alloc(self) -> ArenaChunk | None:
        addr = self.chunk_alloc_mmap(CHUNKSIZE)
        if addr == 0:
            return None
        chunk = ArenaChunk(addr)
        # arena_chunk_init_hard(): the extent node, the first and last map bits and the runs_avail node.
        self.rt.store(addr, 2 * PAGE)
        self.chunk_register(addr)
        self.chunks.append(chunk)
        return chunk

    def arena_run_alloc(self, npages: int) -> int:
        """First fit among freed runs, then fresh pages; a new chunk when none has room."""
        for chunk in self.chunks:
            for i, (first, n) in enumerate(chunk.free_runs):
                if n >= npages:
                    chunk.free_runs[i] = (first + npages, n - npages)
                    return chunk.addr + first * PAGE
            if chunk.next_page + npages <= CHUNK_NPAGES:
                first = chunk.next_page
                chunk.next_page += npages
                return chunk.addr + first * PAGE
        chunk = self.arena_chunk_alloc()
        if chunk is None:
            return 0
        first = chunk.next_page
        chunk.next_page += npages
        return chunk.addr + first * PAGE

    # -- the public interface -------------------------------------------------------------------------------

    def malloc(self, size: int) -> int:
        rt = self.rt
        self.malloc_init()
        rt.charge_malloc()
        if self.tcache == 0:
            # tcache_get(tsd, true): the thread's cache is created on its first allocation of any size.
            self.tcache = self._large(size_class(TCACHE_SIZE), junk=False)
            rt.store(self.tcache, PAGE)
        usize = size_class(max(size, 1))
        if usize <= SMALL_MAXCLASS:
            return self._small(usize, junk=self.opt_junk)
        if usize <= LARGE_MAXCLASS:
            return self._large(usize, junk=self.opt_junk)
        return self._huge(usize)

    def calloc(self, number: int, size: int) -> int:
        """Fresh pages from mmap are already zero, as jemalloc knows; a reused region is zeroed explicitly."""
        total = number * size
        if total >= 1 << 63:
            return 0
        ret = self.malloc(total)
        kind, usize, _ = self.allocations.get(ret, ("", 0, None))
        if ret and (self.opt_junk or kind == "small"):
            self.rt.memset(ret, 0, total)
        return ret

    def free(self, addr: int) -> None:
        if addr == 0:
            return
        self.rt.charge_malloc()
        kind, usize, where = self.allocations.pop(addr)
        if kind == "small":
            where.free_regs.append(addr)
        elif kind == "large":
            chunk_addr = addr & ~(CHUNKSIZE - 1)
            chunk = next(c for c in self.chunks if c.addr == chunk_addr)
            chunk.free_runs.append(((addr - chunk_addr) // PAGE, usize // PAGE))
        else:  # huge: chunk_dalloc_mmap() gives the pages back to the kernel, then the node goes
            csize, node = where
            self.rt.munmap(addr, csize)
            self.free(node)

    def _small(self, usize: int, junk: bool) -> int:
        run = self.bins.get(usize)
        if run is None or (not run.free_regs and run.next_reg == run.nregs):
            npages = usize // gcd(usize, PAGE)  # the smallest run that holds a whole number of regions
            addr = self.arena_run_alloc(npages)
            if addr == 0:
                return 0
            run = self.bins[usize] = Run(addr, npages, usize, npages * PAGE // usize)
        if run.free_regs:
            ret = run.free_regs.pop()
        else:
            ret = run.addr + run.next_reg * usize
            run.next_reg += 1
        self.allocations[ret] = ("small", usize, run)
        if junk:
            self.rt.memset(ret, JUNK_ALLOC, usize)
        return ret

    def _large(self, usize: int, junk: bool) -> int:
        ret = self.arena_run_alloc(usize // PAGE)
        if ret == 0:
            return 0
        self.allocations[ret] = ("large", usize, None)
        if junk:
            self.rt.memset(ret, JUNK_ALLOC, usize)
        return ret

    def _huge(self, usize: int) -> int:
        """huge_palloc(): an extent node to track it, chunks of its own, then junk (or nothing)."""
        node = self._small(EXTENT_NODE_SIZE, junk=self.opt_junk)
        if node == 0:
            return 0
        csize = chunk_ceiling(usize)
        ret = self.chunk_alloc_mmap(csize)
        if ret == 0:
            self.free(node)
            return 0
        self.chunk_register(ret)
        self.allocations[ret] = ("huge", usize, (csize, node))
        if self.opt_junk:
            self.rt.memset(ret, JUNK_ALLOC, usize)
        return ret
