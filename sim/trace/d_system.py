"""The inline constants of D's system library, which dtrace compiles before every program (/usr/lib/dtrace/*.d).

unistd.d's fault codes: what dtrace:::ERROR's arg4 says went wrong (sys/dtrace.h's DTRACEFLT_*), with the
faulting address, if any, in arg5.
"""

from __future__ import annotations

DTRACEFLT_UNKNOWN = 0  # unknown fault
DTRACEFLT_BADADDR = 1  # bad address
DTRACEFLT_BADALIGN = 2  # bad alignment
DTRACEFLT_ILLOP = 3  # illegal operation
DTRACEFLT_DIVZERO = 4  # divide-by-zero
DTRACEFLT_NOSCRATCH = 5  # out of scratch space
DTRACEFLT_KPRIV = 6  # illegal kernel access
DTRACEFLT_UPRIV = 7  # illegal user access
DTRACEFLT_TUPOFLOW = 8  # tuple stack overflow
DTRACEFLT_BADSTACK = 9  # bad stack

# name -> value of each `inline int NAME = value;` the library declares
SYSTEM_INLINES: dict[str, int] = {name: value for name, value in globals().items() if name.startswith("DTRACEFLT_")}
