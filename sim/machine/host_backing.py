"""Guest memory under a hypervisor that backs it on demand: the first write to a never-used guest frame costs more.

A virtual machine's "physical" memory is the host's virtual memory. The host gives a guest frame a real page
only when the guest first touches it: an EPT violation exits to the hypervisor, which allocates a host page,
zero-fills it (the host must not leak another tenant's data) and maps it, then resumes the guest at the same
instruction. The guest sees nothing but time passing at that instruction; a later write to the same frame
(after the guest freed and reused it) costs only the store. So on such a machine the first pagezero() of a
fresh frame is slow and a reused frame's is not: the lecture's dd, whose 5,120 faults all take frames nobody
had used since boot, spends 0.35 s in pagezero, while copying at memory speed elsewhere.

A profile's host_first_touch_ns is that extra time (0 on bare metal). Only writes are counted: a read of a
never-written frame is served from the host's shared zero page.
"""

from __future__ import annotations


class HostBacking:
    """Which guest frames the host has backed (written at least once since the machine booted)."""

    __slots__ = ("first_touch_ns", "backed", "ns")

    def __init__(self, npages: int, first_touch_ns: int) -> None:
        self.first_touch_ns = first_touch_ns
        self.backed = bytearray(npages) if first_touch_ns else None
        self.ns = 0  # host time charged so far (the fast-forward measures faults without it)

    def first_write(self, pfn: int) -> int:
        """The guest writes frame pfn: the host's time for backing it, if this is the first write (else 0)."""
        backed = self.backed
        if backed is None or backed[pfn]:
            return 0
        backed[pfn] = 1
        self.ns += self.first_touch_ns
        return self.first_touch_ns
