"""The free-page pool (sys/vm/vm_phys.c), in two granules: whole free 2 MiB blocks, and single 4 KiB pages.

FreeBSD keeps free pages in buddy queues; this keeps the two sizes the simulator needs. A single page comes from
a block broken up on demand; a block comes back together when all its pages are free again (buddy coalescing),
so reservations (superpages) can be made after memory has been churned. The pool remembers which free pages are
known to be zero (PG_ZERO: page-table pages come back all zero), so an allocation that asks for VM_ALLOC_ZERO
gets one and the fault need not zero it (v_ozfod). Boot memory is not known to be zero.
"""

from __future__ import annotations

NPAGES_PER_BLOCK = 512  # VM_LEVEL_0_NPAGES: a 2 MiB superpage


class VmPhys:
    def __init__(self, first_pfn: int, end_pfn: int) -> None:
        first_block = -(-first_pfn // NPAGES_PER_BLOCK)
        end_block = end_pfn // NPAGES_PER_BLOCK
        self.free_blocks: list[int] = list(range(end_block - 1, first_block - 1, -1))  # pop() gives the lowest
        self.free_zero: dict[int, None] = {}  # pfn -> None, an ordered set: popitem() is LIFO
        self.free_dirty: dict[int, None] = {}
        self.block_free: dict[int, int] = {}  # broken block -> how many of its pages are free
        self.free_count = len(self.free_blocks) * NPAGES_PER_BLOCK
        self.page_count = self.free_count

    def alloc_page(self, want_zero: bool) -> tuple[int, bool] | None:
        """One free page: (pfn, known to be zero), preferring a zeroed page when asked; None if none is free."""
        if want_zero and self.free_zero:
            pfn, zero = self.free_zero.popitem()[0], True
        elif self.free_dirty:
            pfn, zero = self.free_dirty.popitem()[0], False
        elif self.free_zero:
            pfn, zero = self.free_zero.popitem()[0], True
        elif self.free_blocks:
            block = self.free_blocks.pop()
            base = block * NPAGES_PER_BLOCK
            self.free_dirty.update(dict.fromkeys(range(base + NPAGES_PER_BLOCK - 1, base, -1)))
            self.block_free[block] = NPAGES_PER_BLOCK - 1
            self.free_count -= 1
            return base, False
        else:
            return None
        self.block_free[pfn // NPAGES_PER_BLOCK] -= 1
        self.free_count -= 1
        return pfn, zero

    def free_page(self, pfn: int, zero: bool) -> None:
        (self.free_zero if zero else self.free_dirty)[pfn] = None
        self.free_count += 1
        block = pfn // NPAGES_PER_BLOCK
        count = self.block_free[block] + 1
        if count == NPAGES_PER_BLOCK:
            self._coalesce(block)
        else:
            self.block_free[block] = count

    def _coalesce(self, block: int) -> None:
        base = block * NPAGES_PER_BLOCK
        for pfn in range(base, base + NPAGES_PER_BLOCK):
            if pfn in self.free_dirty:
                del self.free_dirty[pfn]
            else:
                del self.free_zero[pfn]
        del self.block_free[block]
        self.free_blocks.append(block)

    def alloc_block(self) -> int | None:
        """A whole free 2 MiB block for a reservation: its first pfn, or None."""
        if not self.free_blocks:
            return None
        block = self.free_blocks.pop()
        self.free_count -= NPAGES_PER_BLOCK
        return block * NPAGES_PER_BLOCK

    def free_block(self, base_pfn: int) -> None:
        self.free_blocks.append(base_pfn // NPAGES_PER_BLOCK)
        self.free_count += NPAGES_PER_BLOCK

    def release_unused(self, base_pfn: int, used: set[int]) -> None:
        """Break a reserved block: its pages not in `used` become single free pages (vm_reserv_break)."""
        block = base_pfn // NPAGES_PER_BLOCK
        free = [pfn for pfn in range(base_pfn + NPAGES_PER_BLOCK - 1, base_pfn - 1, -1) if pfn not in used]
        self.free_dirty.update(dict.fromkeys(free))
        self.block_free[block] = len(free)
        self.free_count += len(free)
        if len(free) == NPAGES_PER_BLOCK:
            self._coalesce(block)

    @property
    def zero_count(self) -> int:
        return len(self.free_zero)
