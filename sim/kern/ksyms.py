"""Kernel and user symbol addresses, so registers and stack frames show plausible amd64 addresses.

Addresses are derived from the symbol's name (a stable hash), so they are the same in every run and scenario.
"""

from __future__ import annotations

import functools
import zlib

KERNBASE = 0xFFFFFFFF80000000  # amd64 vmparam.h: the kernel is linked here
KERNEL_TEXT = KERNBASE + 0x200000
KERNEL_TEXT_SPAN = 0x01000000  # 16 MiB of kernel text
LIBC_BASE = 0x0000000800400000  # where rtld maps libc.so.7 for the first non-PIE program
LIBC_SPAN = 0x00100000
# A non-PIE program's entry point: FreeBSD 11's GNU ld links amd64 programs at 0x400000 (lld, FreeBSD 12's, at
# 0x200000 with .text on the next page); _start follows the ELF headers, .interp, .hash, .dynsym and .rela.
PROGRAM_TEXT = 0x0000000000400400
USRSTACK = 0x00007FFFFFFFF000  # VM_MAXUSER_ADDRESS - PAGE_SIZE (the shared page sits above the stack)
KSTACK_BASE = 0xFFFFFE0000000000  # thread kernel stacks live in the kernel map
KSTACK_PAGES = 4
PCPU_BASE = 0xFFFFFFFF81E00000  # pcpu entry of CPU 0: the kernel's %gs base


def _place(name: str, base: int, span: int) -> int:
    return base + (zlib.crc32(name.encode()) % span) & ~0xF


@functools.cache  # a pure function of the name, asked for on every call a program makes
def kernel_symbol(name: str) -> int:
    return _place(name, KERNEL_TEXT, KERNEL_TEXT_SPAN)


@functools.cache
def libc_symbol(name: str) -> int:
    return _place(name, LIBC_BASE, LIBC_SPAN)


def kernel_stack_top(tid: int) -> int:
    """The top of a thread's kernel stack (td_kstack + KSTACK_PAGES pages), which PCPU(RSP0) holds."""
    return KSTACK_BASE + (tid - 99999) * (KSTACK_PAGES + 1) * 0x1000
