"""The C start-up and the user-side runtime of a simulated program: crt1's _start, exit(), atexit, err(3),
unbuffered stderr, and the glue between a program's C-like code and user memory.

_start (lib/csu/amd64/crt1.c, FreeBSD 11): for a dynamically linked program the run-time linker has already
run (rtld.py: it maps libc.so.7, relocates, sets up TLS and calls libc's initialisers, jemalloc's among them);
crt1 registers rtld's cleanup with atexit() and calls main(). A static program initialises its own TLS
(_init_tls) and runs libc's initialisers itself. exit() runs the atexit handlers last-in first-out, flushes
stdio and calls _exit(2), which never returns.

Everything a program does goes through here, so each step is charged and recorded: system calls through the
libc stubs (libc.py), user-mode loads and stores through umem.py (where the page faults happen).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NoReturn

from sim.core.events import ExitCall, MainCall
from sim.core.pcpu import pcpu
from sim.kern import errno as E
from sim.kern.sysent import SYS
from sim.user.errlst import strerror
from sim.user.malloc import Jemalloc

AT_FDCWD = -100
STAT_MODE = struct.Struct("<H")  # st_mode in FreeBSD 11's struct stat (after st_dev u32, st_ino u32)
STAT_MODE_OFFSET = 8
SIZEOF_STAT = 120
SIZEOF_TIMESPEC = 16
TIMESPEC = struct.Struct("<qq")
SCRATCH_SIZE = 8192  # stack space below the initial %rsp that the C code's locals use


class ProgramExit(Exception):
    """Raised only if _exit(2) returned, which would be a kernel bug."""


class Runtime:
    """libc's per-process state (atexit list, errno access, malloc) and the program's view of memory."""

    def __init__(self, libc, progname: str, env: dict[str, str], junk_default: bool) -> None:
        self.libc = libc
        self.profile = pcpu.machine.profile
        self.progname = progname
        self.env = env
        self.atexit_handlers: list[Callable[[], None]] = []
        self.malloc_impl = Jemalloc(self, junk_default)
        self.rtld = None  # the run-time linker's state, for rtld_exit (none in a static program)
        cpu = pcpu.machine.cpu
        self.scratch_top = (cpu["rsp"] - 0x100) & ~0xF  # locals live below the caller's frame
        self.scratch_next = self.scratch_top

    # -- the machine ------------------------------------------------------------------------------------------

    def step(self, name: str, data: object = None, cost_ns: int = 0) -> None:
        """A stretch of user-mode work that makes no system call, recorded as one event (data: its payload)."""
        machine = pcpu.machine
        machine.charge(cost_ns or machine.profile.user_insn_ns)
        machine.emit("user", name, data)

    def charge_malloc(self) -> None:
        machine = pcpu.machine
        machine.charge(machine.profile.malloc_call_ns)

    def scratch(self, size: int) -> int:
        """Stack space for a local variable (a struct stat, a path, a timespec); reused call to call."""
        size = (size + 15) & ~15
        if self.scratch_next - size < self.scratch_top - SCRATCH_SIZE:
            self.scratch_next = self.scratch_top
        self.scratch_next -= size
        return self.scratch_next

    def cstring(self, text: str) -> int:
        data = text.encode() + b"\0"
        addr = self.scratch(len(data))
        self.store_bytes(addr, data)
        return addr

    # -- user memory: every load and store may fault ------------------------------------------------------------

    @staticmethod
    def _umem():
        from sim.user import umem

        return umem

    def store(self, addr: int, length: int) -> None:
        """The C code writes somewhere in [addr, addr + length): what matters to the model is which pages."""
        self._umem().touch(addr, length, write=True)

    def store_bytes(self, addr: int, data: bytes) -> None:
        self._umem().store(addr, data)

    def load_bytes(self, addr: int, length: int) -> bytes:
        return self._umem().load(addr, length)

    def memset(self, addr: int, byte: int, length: int) -> None:
        self._umem().memset(addr, byte, length)

    def memmove(self, dst: int, src: int, length: int) -> None:
        umem = self._umem()
        umem.store(dst, umem.load(src, length, "memmove"), "memmove")

    # -- errno -------------------------------------------------------------------------------------------------

    def errno(self) -> int:
        return pcpu.curthread.td_errno_user

    def set_errno(self, value: int) -> None:
        td = pcpu.curthread
        old, td.td_errno_user = td.td_errno_user, value
        if old != value:
            pcpu.machine.log.delta(("errno", td.td_tid, old, value))

    # -- system calls with their C library wrappers ----------------------------------------------------------

    def sys(self, name: str, *args: int) -> int:
        if name not in SYS:
            raise NotImplementedError(f"{self.progname} needs the {name} system call, which the simulated kernel "
                                      "does not have yet")  # fmt: skip
        return self.libc.syscall(name, *args)

    def open(self, path: str, flags: int, mode: int = 0) -> int:
        """libc open(): FreeBSD 11's libc implements it with openat(AT_FDCWD, ...)."""
        return self.sys("openat", AT_FDCWD, self.cstring(path), flags, mode)

    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        """mmap(2); 0 for MAP_FAILED (the callers here test for failure only)."""
        ret = self.sys("mmap", addr, length, prot, flags, fd, offset)
        return 0 if ret == -1 else ret & ((1 << 64) - 1)

    def munmap(self, addr: int, length: int) -> int:
        return self.sys("munmap", addr, length)

    def fstat_mode(self, fd: int) -> int | None:
        sb = self.scratch(SIZEOF_STAT)
        if self.sys("fstat", fd, sb) == -1:
            return None
        return STAT_MODE.unpack(self.load_bytes(sb + STAT_MODE_OFFSET, 2))[0]

    def ioctl_int(self, fd: int, request: int) -> int | None:
        arg = self.scratch(4)
        if self.sys("ioctl", fd, request, arg) == -1:
            return None
        return int.from_bytes(self.load_bytes(arg, 4), "little", signed=True)

    def readlink(self, path: str) -> str | None:
        buf = self.scratch(256)
        n = self.sys("readlink", self.cstring(path), buf, 255)
        return None if n == -1 else self.load_bytes(buf, n).decode(errors="replace")

    def issetugid(self) -> int:
        return self.sys("issetugid")

    def secure_getenv(self, name: str) -> str | None:
        """jemalloc's secure_getenv(): the environment is ignored in a set-id process."""
        if self.issetugid() != 0:
            return None
        return self.env.get(name)

    def clock_gettime(self, clock_id: int, tp: int = 0) -> int:
        """clock_gettime(2) into tp (a stack timespec if none is given); returns the time in ns."""
        tp = tp or self.scratch(SIZEOF_TIMESPEC)
        self.libc.clock_gettime(clock_id, tp)
        sec, nsec = TIMESPEC.unpack(self.load_bytes(tp, SIZEOF_TIMESPEC))
        return sec * 1_000_000_000 + nsec

    def clock_getres(self, clock_id: int) -> int:
        tp = self.scratch(SIZEOF_TIMESPEC)
        self.sys("clock_getres", clock_id, tp)
        sec, nsec = TIMESPEC.unpack(self.load_bytes(tp, SIZEOF_TIMESPEC))
        return sec * 1_000_000_000 + nsec

    def signal(self, sig: int, handler: Callable) -> None:
        """signal(3): sigaction(2) with SA_RESTART."""
        self.libc.signal(sig, handler)

    # -- malloc ------------------------------------------------------------------------------------------------

    def malloc(self, size: int) -> int:
        ret = self.malloc_impl.malloc(size)
        if ret == 0:
            self.set_errno(E.ENOMEM)
        return ret

    def calloc(self, number: int, size: int) -> int:
        return self.malloc_impl.calloc(number, size)

    def free(self, addr: int) -> None:
        self.malloc_impl.free(addr)

    # -- stdio and err(3) --------------------------------------------------------------------------------------

    def write_all(self, fd: int, text: str) -> None:
        data = text.encode()
        buf = self.scratch(len(data))
        self.store_bytes(buf, data)
        self.sys("write", fd, buf, len(data))

    def fprintf_stderr(self, text: str) -> None:
        """stderr is unbuffered: each fprintf() is one write(2) from a buffer on the stack."""
        self.write_all(2, text)

    def warn(self, message: str, error: int | None = None) -> None:
        """warn(3): "prog: message: strerror(errno)", as three unbuffered writes."""
        error = self.errno() if error is None else error
        self.fprintf_stderr(f"{self.progname}: ")
        self.fprintf_stderr(message)
        self.fprintf_stderr(f": {strerror(error)}\n")

    def warnx(self, message: str) -> None:
        self.fprintf_stderr(f"{self.progname}: ")
        self.fprintf_stderr(message)
        self.fprintf_stderr("\n")

    def err(self, status: int, message: str) -> NoReturn:
        self.warn(message)
        self.exit(status)

    def errx(self, status: int, message: str) -> NoReturn:
        self.warnx(message)
        self.exit(status)

    # -- exit --------------------------------------------------------------------------------------------------

    def atexit(self, handler: Callable[[], None]) -> None:
        self.atexit_handlers.append(handler)

    def exit(self, status: int) -> NoReturn:
        """exit(3): atexit handlers last registered first (__cxa_finalize), stdio's cleanup, then _exit(2)."""
        self.step("exit", ExitCall(status, len(self.atexit_handlers)))
        while self.atexit_handlers:
            self.atexit_handlers.pop()()
        self.libc._exit(status)
        raise ProgramExit("_exit returned")


Main = Callable[[Runtime, tuple[str, ...], dict[str, str]], int]


def start(main: Main, image: str, static: bool = False) -> Callable:
    """The program as the kernel starts it: _start (after rtld for a dynamic image), main(), exit()."""
    from sim.user import rtld

    def _start(libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
        machine = pcpu.machine
        rt = Runtime(libc, argv[0].rsplit("/", 1)[-1], env, machine.profile.malloc_junk_default)
        if static:
            rtld.static_init(rt, image)
        else:
            rtld.install_files()  # the simulator's stand-in for installworld: the libraries and rtld's files
            rtld.rtld_start(rt, image)
            rt.atexit(lambda: rtld.rtld_exit(rt))  # crt1: atexit(cleanup), cleanup being rtld's rtld_exit
        rt.step("main", MainCall(image, len(argv)))
        rt.exit(main(rt, argv, env))

    _start.__name__ = f"_start_{image}"
    return _start
