"""The event log's schema: the typed payload (Event.data) of each kind of event that carries facts.

A payload holds facts only (numbers, names, flags): views, DTrace providers and exporters read its fields, and
sim/narrative makes the words people read from it. Payloads are NamedTuples: immutable, cheap to make on the
recorder's hot paths, and never a reference to a live simulator object.
"""

from __future__ import annotations

from typing import NamedTuple

# --- processes and system calls (emitted by sim/kern and sim/run) -----------------------------------------------


class ProcessStart(NamedTuple):
    """kind "start": the run's first process begins."""

    pid: int
    command: str  # the command line, as given


class Fork(NamedTuple):
    """kind "proc", name "fork": fork1() made a process."""

    parent: int  # pid
    child: int  # pid
    tid: int  # the child's first thread


class Exec(NamedTuple):
    """kind "proc", name "exec": a process now runs another program."""

    pid: int
    path: str
    argv: tuple[str, ...]


class ProcessExit(NamedTuple):
    """kind "proc", name "exit": exit1()."""

    pid: int
    comm: str
    status: int  # the exit status (meaningful when signal is 0)
    signal: int  # the signal that ended the process, or 0


class SyscallArgs(NamedTuple):
    """kind "syscall", name = the call: syscallenter dispatches it through sysent."""

    names: tuple[str, ...]  # the parameters' names (syscalls.master)
    values: tuple[int, ...]  # the arguments, as fetched


class SyscallResult(NamedTuple):
    """kind "sysret" (name success, error, ERESTART or EJUSTRETURN): cpu_set_syscall_retval."""

    error: int  # 0, an errno value, or ERESTART / EJUSTRETURN (kernel-internal codes)
    retval: int  # td_retval[0] as set in tf_rax on success; 0 otherwise


class Trap(NamedTuple):
    """kind "trap": the CPU takes an exception (a page fault, a general protection fault)."""

    trapno: int
    err: int  # the error code the CPU pushed
    addr: int  # %cr2 for a page fault
    user: bool  # taken in user mode (False: in kernel mode)


# --- more payloads of the kernel and userland (sim/kern, sim/user) ----------------------------------------------


# --- payloads of the machine and the VM system (sim/machine, sim/vm) ---------------------------------------------
