"""Words for the payloads of processes, system calls and traps (sim/core/events.py's first section): the texts
these events carried as their details before they carried facts, made the same, byte for byte."""

from __future__ import annotations

from sim.core.events import Exec, Fork, ProcessExit, ProcessStart, SyscallArgs, SyscallResult, Trap
from sim.kern.errno import EJUSTRETURN, ERESTART
from sim.kern.trap_pfault import T_PROTFLT, fault_code_text
from sim.narrative import words


@words.register
def _(data: ProcessStart) -> str:
    return f"pid {data.pid} starts: {data.command}"


@words.register
def _(data: Fork) -> str:
    return f"pid {data.parent} creates pid {data.child} (tid {data.tid})"


@words.register
def _(data: Exec) -> str:
    return f"pid {data.pid} now runs {data.path} {' '.join(data.argv[1:])}".rstrip()


@words.register
def _(data: ProcessExit) -> str:
    how = f"on signal {data.signal}" if data.signal else f"with status {data.status}"
    return f"pid {data.pid} ({data.comm}) exits {how}: a zombie until its parent waits"


@words.register
def _(data: SyscallArgs) -> str:
    return ", ".join([f"{name}={value:#x}" for name, value in zip(data.names, data.values, strict=True)])


_RESULT_WORDS = {
    ERESTART: "tf_rip backed up by tf_err: the syscall instruction runs again",
    EJUSTRETURN: "the registers were set by the call itself: leave them",
}


@words.register
def _(data: SyscallResult) -> str:
    if data.error == 0:
        return f"tf_rax = {data.retval}, carry clear"
    return _RESULT_WORDS.get(data.error) or f"tf_rax = errno {data.error}, carry set"


@words.register
def _(data: Trap) -> str:
    ring = "user" if data.user else "kernel"
    if data.trapno == T_PROTFLT:
        return f"general protection fault (vector 13) in {ring} mode: {data.addr:#x} is not canonical"
    where = f"at {data.addr:#x}: {fault_code_text(data.err)}; %cr2 = {data.addr:#x}"
    return f"page fault (vector 14) in {ring} mode {where}"
