"""Physical memory: frames of 4 KiB, stored sparsely so a run can touch gigabytes without the host paying for them.

A frame's content is one of:
  - absent from `frames`: all zero (never written, or zeroed);
  - an int 1..255: every byte of the frame is that value (a memset, jemalloc's 0xa5 junk);
  - a bytearray of PAGE_SIZE: real bytes;
  - a list of 512 ints: a page-table page, read and written one 8-byte entry at a time by the MMU and pmap.

Any representation reads as bytes and converts on a partial write, so views and programs never see the
difference; zeroing or filling a whole frame is O(1), which is what lets `dd bs=1g` (two GiB of pages touched)
run in well under a GiB of host memory. What zeroing or copying *costs* is charged by the kernel code that does
it (pmap_zero_page, pagezero, copyout), never here.
"""

from __future__ import annotations

import struct

from sim.core.events import FrameContents

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
NPTEPG = 512  # entries in one page-table page
_ENTRIES = struct.Struct("<512Q")
FRAME_ZERO = FrameContents(0, None)
_DATA = FrameContents(None, None)


class Fill:
    """A source of `length` copies of one byte, e.g. the kernel's zero_region: a copy from it writes no bytes."""

    __slots__ = ("byte", "length", "name")

    def __init__(self, byte: int, length: int, name: str = "") -> None:
        if not 0 <= byte <= 255:
            raise ValueError(f"a fill byte must be 0..255, not {byte}")
        self.byte = byte
        self.length = length
        self.name = name or f"{length} bytes of {byte:#04x}"

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"Fill({self.byte:#04x}, {self.length})"


def frame_contents(physmem: PhysMem, pfn: int) -> FrameContents:
    """What frame pfn holds, as the event log's ("frame", pfn, old, new) deltas record it."""
    content = physmem.frames.get(pfn)
    if content is None:
        return FRAME_ZERO
    if isinstance(content, int):
        return FrameContents(content, None)
    if isinstance(content, list):
        return FrameContents(None, sum(1 for e in content if e))
    return _DATA


class PhysMem:
    """`npages` frames of physical memory, addressed by frame number (pfn) or physical address."""

    def __init__(self, size_bytes: int) -> None:
        if size_bytes % PAGE_SIZE:
            raise ValueError("physical memory must be a whole number of pages")
        self.size = size_bytes
        self.npages = size_bytes >> PAGE_SHIFT
        self.frames: dict[int, int | bytearray | list[int]] = {}

    # -- whole frames -------------------------------------------------------------------------------------------

    def content(self, pfn: int) -> object:
        return self.frames.get(pfn)

    def zero_frame(self, pfn: int) -> None:
        self.frames.pop(pfn, None)

    def fill_frame(self, pfn: int, byte: int) -> None:
        if byte:
            self.frames[pfn] = byte
        else:
            self.frames.pop(pfn, None)

    def copy_frame(self, src: int, dst: int) -> None:
        content = self.frames.get(src)
        if content is None:
            self.frames.pop(dst, None)
        elif isinstance(content, int):
            self.frames[dst] = content
        else:
            self.frames[dst] = content.copy()

    # -- 8-byte entries (page tables) --------------------------------------------------------------------------

    def read_entry(self, pa: int) -> int:
        content = self.frames.get(pa >> PAGE_SHIFT)
        if content is None:
            return 0
        if type(content) is list:
            return content[(pa & PAGE_MASK) >> 3]
        if isinstance(content, int):
            return content * 0x0101010101010101
        offset = pa & PAGE_MASK & ~7
        return int.from_bytes(content[offset : offset + 8], "little")

    def write_entry(self, pa: int, value: int) -> None:
        pfn = pa >> PAGE_SHIFT
        table = self.frames.get(pfn)
        if type(table) is not list:
            table = self._as_table(pfn)
        table[(pa & PAGE_MASK) >> 3] = value

    def table(self, pfn: int) -> list[int]:
        """The frame as a list of 512 entries (converting it if it held bytes), for the MMU and pmap."""
        content = self.frames.get(pfn)
        return content if type(content) is list else self._as_table(pfn)

    def _as_table(self, pfn: int) -> list[int]:
        content = self.frames.get(pfn)
        if content is None:
            table = [0] * NPTEPG
        elif isinstance(content, int):
            table = [content * 0x0101010101010101] * NPTEPG
        else:
            table = list(_ENTRIES.unpack(bytes(content)))
        self.frames[pfn] = table
        return table

    # -- byte ranges within one frame --------------------------------------------------------------------------

    def read(self, pa: int, length: int) -> bytes:
        """`length` bytes at `pa`; the range must not cross a frame boundary."""
        content = self.frames.get(pa >> PAGE_SHIFT)
        if content is None:
            return bytes(length)
        if isinstance(content, int):
            return bytes((content,)) * length
        offset = pa & PAGE_MASK
        if type(content) is list:
            return _ENTRIES.pack(*content)[offset : offset + length]
        return bytes(content[offset : offset + length])

    def read_into(self, pa: int, length: int, dest: bytearray | memoryview, at: int) -> None:
        """Copy `length` bytes at `pa` into dest[at:]: no intermediate bytes object for whole frames of data."""
        content = self.frames.get(pa >> PAGE_SHIFT)
        if content is None:
            dest[at : at + length] = bytes(length)
        elif isinstance(content, int):
            dest[at : at + length] = bytes((content,)) * length
        elif type(content) is list:
            offset = pa & PAGE_MASK
            dest[at : at + length] = _ENTRIES.pack(*content)[offset : offset + length]
        else:
            offset = pa & PAGE_MASK
            dest[at : at + length] = memoryview(content)[offset : offset + length]

    def fill(self, pa: int, byte: int, length: int) -> None:
        """Set `length` bytes at `pa` to `byte` (within one frame); a whole frame becomes a one-byte fill."""
        pfn = pa >> PAGE_SHIFT
        if length == PAGE_SIZE:
            self.fill_frame(pfn, byte)
            return
        content = self.frames.get(pfn)
        if (content is None and byte == 0) or (isinstance(content, int) and content == byte):
            return  # already that value throughout
        data = self._as_bytes(pfn)
        offset = pa & PAGE_MASK
        data[offset : offset + length] = bytes((byte,)) * length

    def write(self, pa: int, data: bytes | bytearray | memoryview) -> None:
        """Store `data` at `pa` (within one frame)."""
        pfn = pa >> PAGE_SHIFT
        length = len(data)
        if length == PAGE_SIZE:
            raw = data.tobytes() if isinstance(data, memoryview) else data
            first = raw[0]
            if raw.count(first) == PAGE_SIZE:  # a page of one byte value stays a one-byte fill
                self.fill_frame(pfn, first)
            else:
                self.frames[pfn] = bytearray(raw)
            return
        offset = pa & PAGE_MASK
        self._as_bytes(pfn)[offset : offset + length] = data

    def _as_bytes(self, pfn: int) -> bytearray:
        content = self.frames.get(pfn)
        if type(content) is bytearray:
            return content
        if content is None:
            data = bytearray(PAGE_SIZE)
        elif isinstance(content, int):
            data = bytearray((content,)) * PAGE_SIZE
        else:
            data = bytearray(_ENTRIES.pack(*content))
        self.frames[pfn] = data
        return data

    def host_bytes(self) -> int:
        """Roughly what the frames cost the host (for benchmarks)."""
        total = 0
        for content in self.frames.values():
            if type(content) is bytearray:
                total += PAGE_SIZE
            elif type(content) is list:
                total += 8 * NPTEPG
        return total
