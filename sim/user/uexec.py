"""Where user-mode execution goes after the kernel returns: the simulator's instruction fetch at %rip.

Ordinarily the kernel returns to the instruction after the `syscall` that entered it, and the Python code that
made the call simply continues. But the kernel may send the thread elsewhere by rewriting the trapframe:
  - back onto the `syscall` itself (ERESTART: the call runs again);
  - to the signal trampoline in the shared page (sendsig), which calls the handler and then sigreturn(2);
  - to a function's first instruction: a new thread's start routine (thr_new), a context made with
    makecontext and installed by setcontext, or a new program's entry point (execve).
resume_user() follows %rip through these until it is back where the interrupted Python code can go on.

Program text the kernel can jump to is registered here by address (text_address): the simulator's stand-in for
the machine code at that address. Addresses come from the function's name, so they are the same in every run.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable

from sim.core.events import SignalHandlerCall, SyscallNumber
from sim.core.pcpu import pcpu
from sim.kern.ksyms import PROGRAM_TEXT

SIGCODE = 0x00007FFFFFFFF000  # the shared page: the signal trampoline is the first thing in it (machdep.py)
SIGCODE_SYSCALL = SIGCODE + 0x13  # sigcode: call *0(%rsp); lea 16(%rsp),%rdi; pushq $0; mov $417,%rax; syscall
USER_TEXT_BASE = PROGRAM_TEXT + 0x10000
USER_TEXT_SPAN = 0x100000

USER_TEXT: dict[int, Callable] = {}  # address -> the code there


class UserFault(Exception):
    """User code jumped to an address that holds no code the simulator knows."""


def text_address(fn: Callable) -> int:
    """The address of `fn` in the program's text, registering it so the kernel can send a thread there."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    address = (USER_TEXT_BASE + zlib.crc32(name.encode()) % USER_TEXT_SPAN) & ~0xF
    USER_TEXT[address] = fn
    return address


def resume_user(syscall_at: int) -> None:
    """The `syscall` instruction at syscall_at has returned to user mode: follow %rip until it is at the
    instruction after that `syscall` again."""
    machine = pcpu.machine
    cpu = machine.cpu
    after = syscall_at + 2
    while cpu["rip"] != after:
        if cpu["rip"] == syscall_at:
            machine.syscall_instruction()  # ERESTART put %rip back on the syscall: it runs again
        else:
            user_jump(cpu["rip"])


def user_jump(rip: int) -> None:
    """Execute the code at %rip. Returns only for the signal trampoline (it ends in sigreturn)."""
    if rip == SIGCODE:
        sigcode()
        return
    fn = USER_TEXT.get(rip)
    if fn is None:
        fn = _exec_image(rip)
        if fn is None:
            raise UserFault(f"user code jumped to {rip:#x}, where the simulator knows no code")
    call_user(fn)
    raise UserFault(f"the code at {rip:#x} returned, but nothing called it")


def call_user(fn: Callable) -> object:
    """Call user code with as many of (libc, %rdi, %rsi, %rdx) as it takes: the C calling convention's first
    arguments, and the library to make its calls with."""
    from sim.user.libc import Libc

    cpu = pcpu.machine.cpu
    nargs = len(inspect.signature(fn).parameters)
    return fn(*(Libc(), cpu["rdi"], cpu["rsi"], cpu["rdx"])[:nargs])


def _exec_image(rip: int) -> Callable | None:
    """A program execve() loaded: its entry point runs the program's main (crt1's _start)."""
    p = pcpu.curthread.td_proc
    vp = getattr(p, "p_textvp", None)
    if rip != PROGRAM_TEXT or vp is None or vp.v_main is None:
        return None
    main = vp.v_main
    argv, env = p.p_args

    def start() -> None:
        from sim.user.libc import Libc

        libc = Libc()
        environ = dict(item.split("=", 1) for item in env if "=" in item)
        libc._exit(main(libc, tuple(argv), environ))

    return start


def _step(name: str, data: object = None) -> None:
    machine = pcpu.machine
    machine.charge(machine.profile.user_insn_ns)
    machine.emit("user", name, data)


def sigcode() -> None:
    """The signal trampoline (sys/amd64/amd64/sigtramp.S): call the handler the signal frame names, then
    sigreturn(2) with the frame's ucontext, which resumes the interrupted context."""
    from sim.kern.machdep import SIGF_HANDLER, SIGF_UC
    from sim.kern.sysent import SYS
    from sim.user import umem

    machine = pcpu.machine
    cpu = machine.cpu
    sp = cpu["rsp"]
    handler = umem.load_word(sp + SIGF_HANDLER)
    sig = cpu["rdi"]
    cpu.set("rsp", sp - 8)
    cpu.set("rip", handler)
    _step("call *SIGF_HANDLER(%rsp)", SignalHandlerCall(handler, sig))
    fn = USER_TEXT.get(handler)
    if fn is None:
        raise UserFault(f"the handler of signal {sig} is at {handler:#x}, where the simulator knows no code")
    call_user(fn)
    cpu.set("rsp", sp)
    cpu.set("rip", SIGCODE + 0x3)
    _step("ret")
    cpu.set("rdi", sp + SIGF_UC)
    _step("lea SIGF_UC(%rsp),%rdi")
    cpu.set("rsp", sp - 8)
    _step("pushq $0")
    cpu.set("rax", SYS["sigreturn"])
    cpu.set("rip", SIGCODE_SYSCALL)
    _step("movq $SYS_sigreturn,%rax", SyscallNumber(SYS["sigreturn"]))
    machine.syscall_instruction()
