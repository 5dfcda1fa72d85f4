"""Words for userland's events (sim/user): libc's system-call stubs, the signal trampoline, the run-time linker,
crt1 and libc's own steps."""

from __future__ import annotations

from sim.core import events as ev
from sim.narrative import CONSTANT_WORDS, words
from sim.user.libc import C_ARGUMENT_REGISTERS

CONSTANT_WORDS.update({
    ("user", "movq %rcx,%r10"): "syscall will overwrite %rcx, so the 4th argument travels in %r10",
    # The signal trampoline (sim/user/uexec.py); a libc stub's "ret" carries its value (UserReturn).
    ("user", "ret"): "the handler returns to the trampoline",
    ("user", "lea SIGF_UC(%rsp),%rdi"): "the saved context, for sigreturn",
    ("user", "pushq $0"): "a fake return address",
    ("user", "setlocale"): "LC_CTYPE from the environment: the C locale needs no files",
    ("user", "malloc_init"): "jemalloc: read MALLOC_CONF, /etc/malloc.conf; boot arena 0",
})  # fmt: skip


# -- libc's system-call stubs ------------------------------------------------------------------------------------


@words.register
def _(data: ev.CallArguments) -> str:
    pairs = zip(C_ARGUMENT_REGISTERS, data.values, strict=False)
    return ", ".join([f"{register}={value:#x}" for register, value in pairs])


@words.register
def _(data: ev.SyscallNumber) -> str:
    return f"system-call number {data.code}"


@words.register
def _(data: ev.CerrorBranch) -> str:
    return "carry set: the call failed" if data.taken else "carry clear: not taken"


@words.register
def _(data: ev.Cerror) -> str:
    return f"errno = {data.errno}; return -1"


@words.register
def _(data: ev.UserReturn) -> str:
    return f"back in the program with {data.value}"


@words.register
def _(data: ev.StackLocals) -> str:
    padding = data.moved - data.size
    aligned = f" ({data.size} for locals, {padding} to keep %rsp 16-byte aligned)" if padding else " of locals"
    return f"%rsp moves down {data.moved} bytes{aligned}: they start at {data.base:#x}"


@words.register
def _(data: ev.ThreadStart) -> str:
    return f"the new thread calls its start routine (struct pthread at {data.pthread:#x})"


@words.register
def _(data: ev.VdsoClockGettime) -> str:
    return f"read the timehands in the shared page at {data.timekeep:#x}: no trap"


@words.register
def _(data: ev.Rdtscp) -> str:
    return f"TSC = {data.tsc}"


@words.register
def _(data: ev.SignalHandlerCall) -> str:
    return f"the signal trampoline calls the handler at {data.handler:#x} for signal {data.sig}"


# -- the run-time linker and crt1 --------------------------------------------------------------------------------


@words.register
def _(data: ev.RtldStart) -> str:
    return f"ld-elf.so.1 relocates itself, then loads {data.path}'s libraries"


@words.register
def _(data: ev.RtldEnvironment) -> str:
    if data.trusted:
        return "LD_BIND_NOW, LD_LIBMAP, LD_LIBRARY_PATH, LD_PRELOAD, ... (none set)"
    return "set-id: the LD_* variables are ignored"


@words.register
def _(data: ev.Relocations) -> str:
    return f"{data.path}: {data.count} relocations"


@words.register
def _(data: ev.JumpSlots) -> str:
    return f"{data.path}: {data.count} jump slots, bound lazily"


@words.register
def _(data: ev.ObjectInit) -> str:
    return f"{data.path}: init functions"


@words.register
def _(data: ev.ObjectFini) -> str:
    return f"{data.path}: fini functions"


@words.register
def _(data: ev.StaticStart) -> str:
    return f"{data.image}: statically linked, no run-time linker"


@words.register
def _(data: ev.MainCall) -> str:
    return f"{data.image}: main({data.argc}, argv, envp)"


@words.register
def _(data: ev.ExitCall) -> str:
    return f"exit({data.status}): run {data.handlers} atexit handler(s)"
