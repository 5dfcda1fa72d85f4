"""Machine-dependent trap and system-call handling (sys/amd64/amd64/trap.c, FreeBSD 11)."""

from __future__ import annotations

from sim.core.events import FetchedSyscall
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.proc import SyscallArgs, Thread
from sim.kern.subr_syscall import syscallenter, syscallret

SYS_syscall = 0  # noqa: N816 - the indirect system call: the number is in the first argument
ARGUMENT_REGISTERS = (
    "tf_rdi",
    "tf_rsi",
    "tf_rdx",
    "tf_rcx",
    "tf_r8",
    "tf_r9",
)  # tf_rcx holds what came in %r10


@kfunc
def amd64_syscall(td: Thread, traced: int) -> None:
    error = syscallenter(td)
    syscallret(td, error)


@kfunc
def cpu_fetch_syscall_args(td: Thread, sa: SyscallArgs) -> int:
    """sv_fetch_syscall_args for FreeBSD/amd64: the number from %rax, up to six arguments from registers."""
    machine = pcpu.machine
    machine.log.now += machine.profile.fetch_args_ns
    frame = td.td_frame.regs
    registers = ARGUMENT_REGISTERS
    code = frame["tf_rax"]
    if code == SYS_syscall:
        code = frame["tf_rdi"]
        registers = registers[1:]
    sa.code = code
    callp = sa.callp = pcpu.kernel.sysent.get(code)  # a number past the table (or a hole in it) gets nosys
    narg = sa.narg = callp.narg if callp else 0
    sa.args = tuple([frame[r] for r in registers[:narg]]) if narg else ()
    td.set_retval(0, 0)
    td.set_retval(1, frame["tf_rdx"])
    if machine.log.recording:
        machine.emit("hook", "sv_fetch_syscall_args", _fetched(code, callp))
    else:
        machine.emit("hook", "sv_fetch_syscall_args")
    return 0


_FETCHED: dict[int, tuple[object, FetchedSyscall]] = {}


def _fetched(code: int, callp) -> FetchedSyscall:
    """sv_fetch_syscall_args' payload, made once per system-call number (and sysent entry)."""
    cached = _FETCHED.get(code)
    if cached is not None and cached[0] is callp:
        return cached[1]
    if len(_FETCHED) >= 4096:
        _FETCHED.clear()  # numbers past the table (nosys) must not pile up
    data = FetchedSyscall(code, callp.name if callp else "nosys", callp.narg if callp else 0)
    _FETCHED[code] = (callp, data)
    return data
