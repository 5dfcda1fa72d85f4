"""The lecture's own system-call examples, as small C programs a student can run and step through.

Slides "System-call synchrony" and "System calls": fork() returns twice, _exit() never returns,
pthread_create() makes a thread, setcontext() rewrites the thread's registers, and EINTR (a caught signal
interrupts a blocking call, which fails or, with SA_RESTART, runs again); lecture_files.py has the others
(write() and aio_write(), a kernel pointer passed to read(), clock_gettime through the vdso).

Each program prints, with write(2) on stdout as printf would, the values its system calls returned: what it
shows is what the simulated kernel did, never a canned result. Operands are checked before a run starts
(`validate`), with usage messages worded as FreeBSD's tools word them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn

from sim.core.pcpu import pcpu
from sim.kern import errno as E
from sim.kern.kern_sig import SA_RESTART, SIGUSR1
from sim.kern.machdep import UC_MCONTEXT, UCONTEXT_SIZE
from sim.user import umem
from sim.user.errlst import strerror
from sim.user.libc import Libc
from sim.user.libc_proc import stack_locals
from sim.user.programs import program
from sim.user.shell import CommandLineError
from sim.user.uexec import text_address

STDOUT_FILENO, STDERR_FILENO = 1, 2
PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_PRIVATE, MAP_ANON = 0x0002, 0x1000
# mcontext_t (machine/ucontext.h): where mc_rip and mc_rsp sit in the registers the kernel saved
MC_RIP, MC_RSP = 160, 184
CONTEXT_STACK = 16384  # the stack a rewritten context runs on, as makecontext's caller would give it

ERRNO_NAMES = {value: name for name, value in vars(E).items() if name.startswith("E") and isinstance(value, int)}
SIGNAL_NAMES = {SIGUSR1: "SIGUSR1"}


# -- the C library calls the programs share: printf, err(3), malloc'd memory ---------------------------------


def printf(libc: Libc, text: str) -> None:
    """printf(3) to stdout, one write(2) per call from a buffer on the stack."""
    write_text(libc, STDOUT_FILENO, text)


def write_text(libc: Libc, fd: int, text: str) -> None:
    data = text.encode()
    with stack_locals(libc, len(data)) as buf:
        umem.store(buf, data)
        libc.syscall("write", fd, buf, len(data))


def err(libc: Libc, status: int, prog: str, message: str) -> NoReturn:
    """err(3): "prog: message: strerror(errno)" on stderr, then exit."""
    write_text(libc, STDERR_FILENO, f"{prog}: {message}: {strerror(libc.errno)}\n")
    libc._exit(status)
    raise AssertionError("_exit returned")


def errno_text(error: int) -> str:
    return f"errno {error} ({ERRNO_NAMES.get(error, '?')}: {strerror(error)})"


def anonymous(libc: Libc, size: int) -> int:
    """Memory from mmap(2), as malloc would hand a program (or err(3) if there is none)."""
    address = libc.syscall("mmap", 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0)
    if address == -1:
        err(libc, 1, "mmap", "mmap")
    return address & ((1 << 64) - 1)


def load_int(address: int, size: int = 8) -> int:
    return int.from_bytes(umem.load(address, size), "little", signed=True)


# -- operands: getopt(3) and the usage message ---------------------------------------------------------------


def getopt(argv: tuple[str, ...], usage: str, flags: str = "", operands: int = 0) -> tuple[set[str], list[str]]:
    """The options (single letters from `flags`) and up to `operands` operands, or a CommandLineError worded
    as getopt(3) and the tool's usage() would put it."""
    prog = argv[0]
    seen: set[str] = set()
    args = list(argv[1:])
    while args and args[0].startswith("-") and args[0] != "-":
        arg = args.pop(0)
        if arg == "--":
            break
        for flag in arg[1:]:
            if flag not in flags:
                raise CommandLineError(f"{prog}: illegal option -- {flag}\nusage: {usage}")
            seen.add(flag)
    if len(args) > operands:
        raise CommandLineError(f"{prog}: unexpected operand {args[operands]!r}\nusage: {usage}")
    return seen, args


def exit_status_operand(argv: tuple[str, ...], usage: str, default: int) -> int:
    _, operands = getopt(argv, usage, operands=1)
    if not operands:
        return default
    if not re.fullmatch(r"[0-9]{1,18}", operands[0]) or int(operands[0]) > 255:
        raise CommandLineError(f"{argv[0]}: status must be a whole number from 0 to 255, not {operands[0]!r}")
    return int(operands[0])


def validator(usage: str, flags: str = "", operands: int = 0) -> Callable[[tuple[str, ...], dict[str, str]], None]:
    def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
        getopt(argv, usage, flags, operands)

    return validate


# -- fork() returns twice ------------------------------------------------------------------------------------

FORK_USAGE = "fork [status]"


@program(
    "fork",
    "fork() returns twice: the child's pid in the parent, 0 in the child; the parent's wait4() collects the "
    "child's exit status (fork [status], default 0)",
    validate=lambda argv, env: exit_status_operand(argv, FORK_USAGE, 0),
)
def fork_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    status = exit_status_operand(argv, FORK_USAGE, 0)

    def child(libc: Libc) -> int:
        printf(libc, "child: fork() returned 0\n")
        printf(libc, f"child: _exit({status})\n")
        return status

    pid = libc.fork(child)
    if pid == -1:
        err(libc, 1, argv[0], "fork")
    printf(libc, f"parent: fork() returned {pid}\n")
    got, wstatus = libc.waitpid(pid)
    printf(libc, f"parent: wait4({pid}) returned {got}, status {wstatus:#x}: WEXITSTATUS {wstatus >> 8}\n")
    return wstatus >> 8  # the child's status is the parent's, as a shell's `exit $?`


# -- _exit() never returns -----------------------------------------------------------------------------------

EXIT_USAGE = "exit [status]"


@program(
    "exit",
    "_exit() never returns: the line after it is never printed (exit [status], default 3)",
    validate=lambda argv, env: exit_status_operand(argv, EXIT_USAGE, 3),
)
def exit_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    status = exit_status_operand(argv, EXIT_USAGE, 3)
    printf(libc, f"calling _exit({status})\n")
    libc._exit(status)
    printf(libc, "_exit() returned\n")  # the lecture's point: this line is never reached
    return 0


# -- pthread_create() creates a thread ---------------------------------------------------------------------


def thread_self(libc: Libc) -> int:
    """thr_self(2): this thread's id, as pthread_getthreadid_np() gets it."""
    with stack_locals(libc, 8) as tid:
        libc.syscall("thr_self", tid)
        return load_int(tid)


def thread_worker(libc: Libc) -> None:
    printf(libc, f"thread: getpid() = {libc.getpid()}, thread id {thread_self(libc)}\n")


@program(
    "thread",
    "pthread_create() starts a second thread in the same process (same pid, new thread id); pthread_join() "
    "waits for it",
    validate=validator("thread"),
)
def thread_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    printf(libc, f"main: getpid() = {libc.getpid()}, thread id {thread_self(libc)}\n")
    thread = libc.pthread_create(thread_worker)
    if thread == -1:
        err(libc, 1, argv[0], "pthread_create")
    printf(libc, "main: pthread_create() returned 0\n")
    printf(libc, f"main: pthread_join() returned {libc.pthread_join(thread)}\n")
    return 0


# -- setcontext() rewrites the thread's registers ----------------------------------------------------------


def on_new_stack(libc: Libc) -> None:
    """Where the rewritten context resumes: a function no one called, on a stack it did not have."""
    cpu = pcpu.machine.cpu
    printf(libc, f"on_new_stack: running at %rip {cpu['rip']:#x} with %rsp {cpu['rsp']:#x}\n")
    libc._exit(0)


@program(
    "setcontext",
    "getcontext() saves the thread's registers; setcontext() loads rewritten ones (%rip, %rsp) and does not "
    "return: the thread goes on in another function, on another stack",
    validate=validator("setcontext"),
)
def setcontext_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    stack = anonymous(libc, CONTEXT_STACK)
    with stack_locals(libc, UCONTEXT_SIZE) as uc:
        rc = libc.syscall("getcontext", uc)
        if rc == -1:
            err(libc, 1, argv[0], "getcontext")
        rip, rsp = load_int(uc + UC_MCONTEXT + MC_RIP), load_int(uc + UC_MCONTEXT + MC_RSP)
        printf(libc, f"getcontext() returned {rc}: saved %rip {rip:#x}, %rsp {rsp:#x}\n")
        new_rip, new_rsp = text_address(on_new_stack), stack + CONTEXT_STACK - 8
        umem.store_word(uc + UC_MCONTEXT + MC_RIP, new_rip)
        umem.store_word(uc + UC_MCONTEXT + MC_RSP, new_rsp)
        printf(libc, f"setcontext(): %rip := {new_rip:#x} (on_new_stack), %rsp := {new_rsp:#x}\n")
        libc.syscall("setcontext", uc)
        err(libc, 1, argv[0], "setcontext")  # reached only if setcontext failed


# -- EINTR: a caught signal interrupts a blocking read() --------------------------------------------------------

EINTR_USAGE = "eintr [-r]"


def on_signal(libc: Libc, sig: int) -> None:
    printf(libc, f"handler: caught signal {sig} ({SIGNAL_NAMES.get(sig, '?')})\n")


@program(
    "eintr",
    "a read() from an empty pipe is interrupted by SIGUSR1 from a child: it fails with EINTR, or with -r "
    "(SA_RESTART) the kernel runs it again and it gets the child's data",
    validate=validator(EINTR_USAGE, flags="r"),
)
def eintr_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    flags, _ = getopt(argv, EINTR_USAGE, flags="r")
    sa_flags = SA_RESTART if "r" in flags else 0
    rc = libc.sigaction(SIGUSR1, on_signal, sa_flags)
    printf(libc, f"sigaction(SIGUSR1, handler, {'SA_RESTART' if sa_flags else '0'}) returned {rc}\n")
    rfd, wfd = libc.pipe()
    parent = libc.getpid()
    with stack_locals(libc, 100) as buf:

        def child(libc: Libc) -> int:
            libc.kill(parent, SIGUSR1)  # the parent is asleep in read(): this interrupts it
            umem.store(buf, b"hi")
            libc.syscall("write", wfd, buf, 2)  # data for a restarted read
            return 0

        pid = libc.fork(child)
        printf(libc, f"parent: fork() returned {pid}; read() on the empty pipe sleeps\n")
        n = libc.syscall("read", rfd, buf, 100)
        if n == -1:
            printf(libc, f"parent: read() returned -1, {errno_text(libc.errno)}\n")
        else:
            printf(libc, f"parent: read() returned {n}: {umem.load(buf, n).decode(errors='replace')!r}\n")
    got, wstatus = libc.waitpid(pid)
    printf(libc, f"parent: wait4({pid}) returned {got}, status {wstatus:#x}\n")
    return 0
