"""dtrace -p PID: trace with one process of a run "grabbed", as dtrace grabs a running process.

trapscope has no processes running outside a run, so the run is given too (-c COMMAND or --scenario NAME), and
PID is one of its processes: the IPC lab's child (1001 in `ipc-static 2proc`), the parent of a fork, any pid the
run makes. As with dtrace -p: $target is PID; probes still fire system-wide; tracing ends when that process exits
("dtrace: pid N has exited"), END firing then, even while the rest of the run goes on. A pid the run never had is
refused as dtrace refuses a process it cannot grab, and so is a kernel process (FreeBSD's proc0-like processes
cannot be grabbed: libproc's "system process").
"""

from __future__ import annotations

from sim.core.events import ProcessExit
from sim.core.log import Event
from sim.kern.kernel import Kernel
from sim.trace.d_parser import DtraceError

DTRACE_PID = Kernel.FIRST_PID - 1  # dtrace(1) itself: started just before the command it runs


def macro_variables(target: int) -> dict[str, int]:
    """dt_pcb's macro variables a program may name: $target (the -c command's or -p process's pid), $pid and $ppid
    (dtrace's own and its shell's), $uid and $gid (root's, who runs dtrace)."""
    return {"target": target, "pid": DTRACE_PID, "ppid": DTRACE_PID - 1, "uid": 0, "gid": 0}


class Grab:
    """The grabbed process: watches the run's events for its exit."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exited: ProcessExit | None = None
        self.exit_ns = 0

    def saw(self, event: Event) -> bool:
        """True once `event` is the grabbed process's exit (tracing ends with it)."""
        data = event.data
        if type(data) is ProcessExit and data.pid == self.pid:
            self.exited, self.exit_ns = data, event.t_ns
            return True
        return False

    def check(self, threads: dict[int, tuple[int, str]]) -> None:
        """Refuse a pid the run never had, or a kernel process's, as dtrace refuses to grab it."""
        pids = {pid for pid, _ in threads.values()}
        if self.pid not in pids:
            users = ", ".join(str(pid) for pid in sorted(pids) if pid >= Kernel.FIRST_PID)
            raise DtraceError(f"dtrace: failed to grab pid {self.pid}: No such process (the run's pids: {users})")
        if self.pid < Kernel.FIRST_PID:
            raise DtraceError(f"dtrace: failed to grab pid {self.pid}: system process")

    def exit_message(self) -> str:
        status = self.exited.status if self.exited is not None and not self.exited.signal else 0
        return f"dtrace: pid {self.pid} {f'exited with status {status}' if status else 'has exited'}"
