"""The walker: one pass over the event stream that gives each step its context, for every view.

Fed one event at a time (a stored log or a live run's stream), it keeps what a view needs to know about the step
just taken: the thread on the CPU, its process and program (p_comm as it was then), the ring, the thread's open
kernel frames, the system call it is in and the trap it took. The replay, the stepper's navigation, the flame
graphs and timelines and the DTrace providers read this context instead of each rebuilding it. `copy()` gives an
independent walker (the replay's checkpoints).

It reads the event log's schema only (sim/core/events.py's payloads and the deltas of sim/core/log.py):
  - "start" (ProcessStart) names the first process after its command; "proc" fork (Fork) gives the child its
    parent's name, exec (Exec) the new program's (MAXCOMLEN characters of its file name), exit (ProcessExit)
    abandons the thread's kernel stack (exit1() never returns);
  - ("thread", old_tid, new_tid) puts another thread on the CPU, ("reg", "cpl", old, new) changes ring and
    ("reg", "rip", old, new) is the last instruction pointer written;
  - "enter" and "exit" open and close kernel frames; "syscall" (SyscallArgs) begins the thread's system call and
    its "sysret" (SyscallResult) ends it; "trap" (Trap) is the thread's trap until it returns to user mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sim.core.events import Exec, Fork, ProcessExit, ProcessStart, SyscallArgs, Trap
from sim.core.log import Event

MAXCOMLEN = 19  # sys/param.h: p_comm holds this many characters
USER_CPL = 3


class ThreadTable(Protocol):
    """tid -> (pid, command name): Run.threads for a stored run, the kernel's threads as they are for a live one."""

    def get(self, tid: int, default: tuple[int, str], /) -> tuple[int, str]: ...

    def values(self) -> Iterable[tuple[int, str]]: ...


class Syscall(tuple):
    """The system call a thread is in: (name, arguments)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self[0]

    @property
    def args(self) -> SyscallArgs:
        return self[1]


def thread_change(deltas: tuple) -> tuple[int, int] | None:
    """(old_tid, new_tid) if these deltas put another thread on the CPU (the start event, cpu_switch)."""
    for delta in deltas:
        if delta[0] == "thread":
            return delta[1], delta[2]
    return None


def program_name(path: str) -> str:
    """p_comm after exec: the file name's last component, cut to MAXCOMLEN (kern_exec.c)."""
    return path.rsplit("/", 1)[-1][:MAXCOMLEN]


class Walker:
    """The context after each step fed to `step`. Read its attributes; `stack` is the walker's own list."""

    __slots__ = ("threads", "tid", "pid", "comm", "cpl", "rip", "stack", "syscall", "trap", "comms", "_stacks",
                 "_syscalls", "_traps")  # fmt: skip

    def __init__(self, threads: ThreadTable, cpl: int = USER_CPL) -> None:
        self.threads = threads
        self.tid = 0  # the thread on the CPU (0 before the run's first event)
        self.pid = 0  # its process
        self.comm = ""  # its process's p_comm at this point of the run (execname)
        self.cpl = cpl  # the ring: 0 kernel, 3 user
        self.rip = 0  # the last %rip written (the user PC while in user mode)
        self.stack: list[str] = []  # the thread's open kernel frames, outermost first
        self.syscall: Syscall | None = None  # the system call the thread is in, from its dispatch to its result
        self.trap: Trap | None = None  # the last trap the thread took, until it returns to user mode
        self.comms: dict[int, str] = {}  # pid -> p_comm, as events named it
        self._stacks: dict[int, list[str]] = {0: self.stack}
        self._syscalls: dict[int, Syscall | None] = {}
        self._traps: dict[int, Trap | None] = {}

    def copy(self) -> Walker:
        other = Walker(self.threads, self.cpl)
        other.tid, other.pid, other.comm, other.rip = self.tid, self.pid, self.comm, self.rip
        other.syscall, other.trap = self.syscall, self.trap
        other.comms = dict(self.comms)
        other._stacks = {tid: list(stack) for tid, stack in self._stacks.items()}
        other.stack = other._stacks[self.tid]
        other._syscalls, other._traps = dict(self._syscalls), dict(self._traps)
        return other

    def step(self, event: Event) -> None:
        """Apply one event: its deltas first (the thread, ring and %rip it leaves), then what its kind does."""
        kind = event.kind
        deltas = event.deltas
        if deltas:
            for delta in deltas:
                tag = delta[0]
                if tag == "reg":
                    register = delta[1]
                    if register == "rip":
                        self.rip = delta[3]
                    elif register == "cpl":
                        self.cpl = delta[3]
                        if delta[3] == USER_CPL:
                            self.syscall = self.trap = None  # back in user mode: the call or trap is over
                elif tag == "thread":
                    self._switch(delta[2])
        if kind == "enter":
            self.stack.append(event.name)
        elif kind == "exit":
            stack = self.stack
            name = event.name
            if stack and stack[-1] == name:
                stack.pop()
            elif name in stack:  # frames left by a longjmp-like unwind (onfault): drop them with this one
                del stack[len(stack) - 1 - stack[::-1].index(name) :]
        elif kind == "syscall":
            self.syscall = Syscall((event.name, event.data))
        elif kind == "sysret":
            self.syscall = None  # the call's result is set: it is over
        elif kind == "trap":
            self.trap = event.data
        elif kind == "proc" or kind == "start":
            self._process(event.name, event.data)

    def _switch(self, tid: int) -> None:
        old = self.tid
        self._syscalls[old], self._traps[old] = self.syscall, self.trap
        self.tid = tid
        self.pid, final = self.threads.get(tid, (0, ""))
        self.comm = self.comms.get(self.pid, final)
        stack = self._stacks.get(tid)
        if stack is None:
            stack = self._stacks[tid] = []
        self.stack = stack
        self.syscall, self.trap = self._syscalls.get(tid), self._traps.get(tid)

    def _process(self, command: str, data: object) -> None:
        """p_comm as it is at each point: the first process is named by its command, a forked child takes its
        parent's name, exec gives the new program's; exit1() abandons the thread's kernel stack."""
        if type(data) is ProcessStart:
            self.comms[data.pid] = command
        elif type(data) is Fork:
            self.comms[data.child] = self.comms.get(data.parent) or self._final_comm(data.parent)
        elif type(data) is Exec:
            self.comms[data.pid] = program_name(data.path)
        elif type(data) is ProcessExit:
            self.stack.clear()
        else:
            return
        self.comm = self.comms.get(self.pid, self.comm)

    def _final_comm(self, pid: int) -> str:
        """A process no event named (a kernel process): the name the thread table gives it."""
        return next((comm for p, comm in self.threads.values() if p == pid), "")

    def comm_of(self, tid: int) -> str:
        """p_comm of thread `tid`'s process at this point (its final name if no event named it)."""
        pid, final = self.threads.get(tid, (0, ""))
        return self.comms.get(pid, final)

    def seen_threads(self) -> list[int]:
        """The thread ids the walk has seen on the CPU so far."""
        return [tid for tid in self._stacks if tid]

    def stack_of(self, tid: int) -> list[str]:
        """Thread `tid`'s open kernel frames, outermost first."""
        return self._stacks.get(tid, [])
