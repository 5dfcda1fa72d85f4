"""Per-CPU data, as FreeBSD's PCPU: which machine this CPU is, its kernel, and the thread running on it.

Kernel code reaches the current thread the way FreeBSD does (curthread), rather than threading a context
argument through every function. One run at a time owns the CPU (see sim/run.py), so this is never shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.kern.kernel import Kernel
    from sim.kern.proc import Thread
    from sim.machine.machine import Machine


class Pcpu:
    machine: Machine
    kernel: Kernel
    curthread: Thread


pcpu = Pcpu()
