"""Synthetic event logs for the DTrace tests: the event shapes sim/kern records, built step by step.

They let the provider tests pin down exactly when each probe fires without depending on the kernel model's
costs; the lecture tests run the real simulator.
"""

from __future__ import annotations

from sim.core.events import ProcessStart, SyscallArgs, SyscallResult
from sim.core.log import Event
from sim.trace.dtrace import DtraceResult, compile_script, trace_events


class LogBuilder:
    """Appends events the way sim/core/log.py records them: (t_ns, kind, name, data, deltas, depth)."""

    def __init__(self, tid: int = 100000, pid: int = 1000, comm: str = "dd") -> None:
        self.events: list[Event] = []
        self.t = 0
        self.depth = 0
        self.threads: dict[int, tuple[int, str]] = {tid: (pid, comm)}
        self.emit(0, "start", comm, ProcessStart(pid, comm), (("thread", 0, tid),))

    def emit(self, ns: int, kind: str, name: str, data: object = None, deltas: tuple = ()) -> None:
        self.t += ns
        self.events.append(Event(self.t, kind, name, data, deltas, self.depth))

    def user(self, ns: int = 1, name: str = "step", rip: int = 0x201000) -> None:
        self.emit(ns, "user", name, "", (("reg", "rip", 0, rip),))

    def enter(self, name: str, ns: int = 0) -> None:
        self.depth += 1
        self.emit(ns, "enter", name)

    def exit(self, name: str, ns: int = 0, rv: object = None) -> None:
        self.emit(ns, "exit", name, rv)
        self.depth -= 1

    def call(self, name: str, ns: int, rv: object = None) -> None:
        """A leaf kernel function that takes `ns`."""
        self.enter(name)
        self.exit(name, ns, rv)

    def syscall(self, name: str, args: dict[str, int] | None = None, retval: int = 0, error: int = 0,
                body_ns: int = 100, probe_ns: int = 0, systrace: bool = False) -> None:  # fmt: skip
        """One system call as Xfast_syscall -> amd64_syscall -> syscallenter record it."""
        self.emit(120, "insn", "syscall")
        self.enter("Xfast_syscall")
        self.enter("amd64_syscall")
        self.enter("syscallenter")
        self.emit(2, "skip", "ktrsyscall")
        if systrace:
            self.call("systrace_probe_func", probe_ns)
        self.emit(0, "syscall", name, SyscallArgs(tuple(args or {}), tuple((args or {}).values())))
        self.call(f"sys_{name}", body_ns, error)
        if systrace:
            self.call("systrace_probe_func", probe_ns)
        self.enter("cpu_set_syscall_retval")
        self.emit(40, "sysret", "error" if error else "success", SyscallResult(error, 0 if error else retval))
        self.exit("cpu_set_syscall_retval")
        self.exit("syscallenter")
        self.exit("amd64_syscall")
        self.exit("Xfast_syscall")
        self.emit(120, "insn", "sysretq")

    def switch(self, tid: int, pid: int, comm: str, ns: int = 10) -> None:
        old = self._current()
        self.threads.setdefault(tid, (pid, comm))
        self.emit(ns, "proc", "cpu_switch", f"tid {old} -> tid {tid}", (("thread", old, tid),))

    def _current(self) -> int:
        tid = 0
        for event in self.events:
            for delta in event.deltas:
                if delta[0] == "thread":
                    tid = delta[2]
        return tid

    def end(self, ns: int = 10) -> None:
        self.emit(ns, "end", "run")


def trace(script: str, log: LogBuilder, quiet: bool = True, systrace: bool = False) -> DtraceResult:
    compiled = compile_script(script)
    return trace_events(compiled, log.events, log.threads, end_ns=log.t, systrace_frames=systrace, quiet=quiet)
