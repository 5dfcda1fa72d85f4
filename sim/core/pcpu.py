"""Per-CPU data, as FreeBSD's PCPU: which machine this CPU is, its kernel, and the thread running on it.

Kernel code reaches the current thread the way FreeBSD does (curthread), rather than threading a context
argument through every function. Each OS thread has its own: a run is recorded on one OS thread (its simulated
threads are greenlets that all run on it, sim/kern/sched.py), so two runs recorded at once in two threads share
nothing and need no lock. A run attaches its machine and kernel for as long as it runs (sim/run.py's record).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.kern.kernel import Kernel
    from sim.kern.proc import Thread
    from sim.machine.machine import Machine


class Pcpu(threading.local):
    machine: Machine | None = None
    kernel: Kernel | None = None
    curthread: Thread | None = None

    def attach(self, machine: Machine, kernel: Kernel) -> None:
        """This OS thread's CPU is now `machine`, running `kernel` (until detach)."""
        self.machine, self.kernel = machine, kernel
        _machine.set(machine)

    def detach(self) -> None:
        """The run is over: its machine, kernel and threads are no longer reachable from this OS thread."""
        self.machine = self.kernel = self.curthread = None
        _machine.set(None)


pcpu = Pcpu()

# pcpu.machine again, for the two hottest readers (the @kfunc wrapper and gate(), about two reads in three): a
# context variable reads in ~40 ns where a thread-local attribute takes ~130 (3.11, getpid loop: 3 to 4% of a
# recorded run). It holds what attach set in this OS thread's context; a greenlet starts with an empty context,
# so sim/kern/sched.py gives each simulated thread's greenlet a copy of its creator's.
_machine: ContextVar[Machine | None] = ContextVar("pcpu.machine", default=None)
curmachine = _machine.get
