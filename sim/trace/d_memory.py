"""The memory a D program's typed objects live in: its static variables (`int a[5];`, `struct foo s;`), the storage
of self-> and this-> variables of struct, union or array type, and what alloca() hands out.

Addresses are plain integers in one 64-bit address space, laid out from DATA_BASE; an access outside every region
is a fault, reported as DTrace reports one ("invalid address (0x...)"), and abandons the clause. Kernel objects
(sim/trace/d_kernel_types.py) are regions too, whose bytes are those of the simulated kernel at the firing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from sim.trace.d_output import DType
from sim.trace.d_system import DTRACEFLT_BADADDR, DTRACEFLT_NOSCRATCH, DTRACEFLT_UNKNOWN

DATA_BASE = 0xFFFF_FE00_0100_0000  # the D program's own data: an address range of the kernel map, as in DTrace
SCRATCH_BYTES = 8192  # what alloca() may hand out in one firing (DTrace's default scratch, 8 KB per CPU)
STRING_SIZE = 256  # a string's storage: DTrace's default strsize


class DRuntimeError(Exception):
    """An error while a clause runs (dtrace's "error on enabled probe"); the clause's record is dropped. `fault`
    is its DTRACEFLT_* code and `address` the faulting address (dtrace:::ERROR's arg4 and arg5)."""

    def __init__(self, message: str, fault: int = DTRACEFLT_UNKNOWN, address: int = 0) -> None:
        super().__init__(message)
        self.fault, self.address = fault, address


def fault(address: int) -> DRuntimeError:
    address &= 0xFFFF_FFFF_FFFF_FFFF
    return DRuntimeError(f"invalid address (0x{address:x})", DTRACEFLT_BADADDR, address)


@dataclass
class Layout:
    """Where the program's static objects go: allocated at compile time, zeroed at each session's start."""

    next_address: int = DATA_BASE
    regions: list[tuple[int, int]] = field(default_factory=list)  # (address, size)

    def allocate(self, size: int, align: int = 8) -> int:
        address = -(-self.next_address // align) * align
        self.regions.append((address, max(size, 1)))
        self.next_address = address + max(size, 1) + 16  # a gap: one past an object's end is not another's start
        return address


class Memory:
    """A session's memory: regions of bytes by start address; reads and writes must fall inside one region."""

    def __init__(self, layout: Layout) -> None:
        self.bases: list[int] = []
        self.regions: list[bytearray] = []
        self.next_address = layout.next_address
        self.scratch: tuple[int, int, int] | None = None  # (firing, address, bytes used) of alloca()
        self.storage: dict[tuple, int] = {}  # self->/this-> objects: (scope, tid, name) -> address
        for address, size in layout.regions:
            self._add(address, bytearray(size))

    def _add(self, address: int, data: bytearray) -> None:
        index = bisect.bisect(self.bases, address)
        self.bases.insert(index, address)
        self.regions.insert(index, data)

    def allocate(self, size: int, align: int = 8) -> int:
        address = -(-self.next_address // align) * align
        self._add(address, bytearray(max(size, 1)))
        self.next_address = address + max(size, 1) + 16
        return address

    def storage_for(self, key: tuple, size: int, address: int | None = None) -> int:
        """The object `key` names, made on first use (at `address` if given: a kernel object's own address)."""
        found = self.storage.get(key)
        if found is None:
            if address is None:
                found = self.allocate(size)
            else:
                found = address
                self._add(address, bytearray(size))
            self.storage[key] = found
        return found

    def alloca(self, firing: int, size: int) -> int:
        if self.scratch is None:
            self.scratch = (-1, self.allocate(SCRATCH_BYTES), 0)
        when, base, used = self.scratch
        if when != firing:
            used = 0
        start = -(-used // 8) * 8
        if size < 0 or start + size > SCRATCH_BYTES:
            raise DRuntimeError("out of scratch space", DTRACEFLT_NOSCRATCH)
        self.scratch = (firing, base, start + size)
        return base + start

    def _locate(self, address: int, size: int) -> tuple[bytearray, int]:
        index = bisect.bisect(self.bases, address) - 1
        if index >= 0:
            offset = address - self.bases[index]
            region = self.regions[index]
            if offset + size <= len(region):
                return region, offset
        raise fault(address)

    def read(self, address: int, size: int) -> bytes:
        region, offset = self._locate(address, size)
        return bytes(region[offset : offset + size])

    def write(self, address: int, data: bytes) -> None:
        region, offset = self._locate(address, len(data))
        region[offset : offset + len(data)] = data

    def load(self, address: int, dtype: DType) -> object:
        if dtype.kind == "string":
            return read_string(self, address, STRING_SIZE)
        data = self.read(address, dtype.size)
        return int.from_bytes(data, "little", signed=dtype.signed)

    def store(self, address: int, dtype: DType, value: object) -> None:
        if dtype.kind == "string":
            data = str(value).encode()[: STRING_SIZE - 1]
            self.write(address, data + bytes(STRING_SIZE - len(data)))
            return
        bits = dtype.size * 8
        self.write(address, (int(value) & ((1 << bits) - 1)).to_bytes(dtype.size, "little"))


def read_string(memory: Memory, address: int, limit: int) -> str:
    """The NUL-terminated string at address, at most `limit` bytes (DTrace's strsize), as far as memory goes."""
    region, offset = memory._locate(address, 1)
    end = region.find(0, offset, offset + limit)
    end = min(len(region), offset + limit) if end < 0 else end
    return region[offset:end].decode(errors="replace")
