"""The lecture's system-call examples about data: synchronous calls doing asynchronous work, and the
user-kernel interface as a trusted computing base (the other examples are in lecture_programs.py).

Slide "System-call asynchrony": write() returns once the kernel has copied the data (the caller may reuse its
buffer at once) though the disk gets it only later; aio_write() returns at once and the caller must wait, with
aio_error()/aio_return(), before it may reuse the buffer. Slide "Security and reliability (4)": a kernel
pointer passed to read() gets EFAULT. Slide "System-call invocation": clock_gettime() through the vdso, with
no trap, on a machine whose timecounter the vdso can read.
"""

from __future__ import annotations

import struct

from sim.kern import errno as E
from sim.kern.ksyms import KERNBASE  # amd64 vmparam.h: the kernel's own text and data start here
from sim.kern.vfs_aio import AIOCB_SIZE
from sim.user import umem
from sim.user.lecture_programs import ERRNO_NAMES, err, getopt, load_int, printf, validator
from sim.user.libc import Libc
from sim.user.libc_proc import stack_locals
from sim.user.programs import program

AT_FDCWD = -100
O_RDONLY, O_WRONLY, O_SYNC, O_CREAT, O_TRUNC = 0x0000, 0x0001, 0x0080, 0x0200, 0x0400
CLOCK_MONOTONIC = 4
TIMESPEC = struct.Struct("<qq")
AIOCB_HEAD = struct.Struct("<i4xqQQ")  # struct aiocb's aio_fildes, aio_offset, aio_buf, aio_nbytes
DATA = b"lecture 4\n"
FILE_PATH = "/tmp/lecture4"
POLL_NS = 1_000_000  # aio-write checks on its job every millisecond


def open_file(libc: Libc, path: str, flags: int, mode: int = 0) -> int:
    """open(2) as FreeBSD 11's libc makes it: openat(AT_FDCWD, path, ...); err(3) if it fails."""
    data = path.encode() + b"\0"
    with stack_locals(libc, len(data)) as cpath:
        umem.store(cpath, data)
        fd = libc.syscall("openat", AT_FDCWD, cpath, flags, mode)
    if fd == -1:
        err(libc, 1, "open", path)
    return fd


def read_back(libc: Libc, path: str) -> bytes:
    """What another reader of the file sees now: the kernel's copy, whatever the program's buffer holds."""
    fd = open_file(libc, path, O_RDONLY)
    with stack_locals(libc, 64) as buf:
        n = libc.syscall("read", fd, buf, 64)
        data = umem.load(buf, max(n, 0))
    libc.syscall("close", fd)
    return data


# -- write(): copy semantics ---------------------------------------------------------------------------------

WRITE_USAGE = "write-file [-s]"


@program(
    "write-file",
    f"write() to {FILE_PATH} returns once the kernel has copied the data: the buffer is reused at once, and "
    "the disk gets the data later, from the syncer (-s: fsync() before exit waits for the disk)",
    validate=validator(WRITE_USAGE, flags="s"),
)
def write_file_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    flags, _ = getopt(argv, WRITE_USAGE, flags="s")
    fd = open_file(libc, FILE_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    with stack_locals(libc, len(DATA)) as buf:
        umem.store(buf, DATA)
        n = libc.syscall("write", fd, buf, len(DATA))
        if n == -1:
            err(libc, 1, argv[0], FILE_PATH)
        printf(libc, f"write({fd}, buf, {len(DATA)}) returned {n}\n")
        umem.memset(buf, ord("X"), len(DATA))  # copy semantics: the buffer is ours again at once
        printf(libc, f"buf reused at once: now {umem.load(buf, len(DATA))!r}\n")
    if "s" in flags:
        printf(libc, f"fsync({fd}) returned {libc.syscall('fsync', fd)}\n")
    printf(libc, f"close({fd}) returned {libc.syscall('close', fd)}\n")
    printf(libc, f"{FILE_PATH} holds {read_back(libc, FILE_PATH)!r}\n")
    return 0


# -- aio_write(): shared semantics ---------------------------------------------------------------------------


@program(
    "aio-write",
    f"aio_write() to {FILE_PATH} only queues the write: aio_error() says EINPROGRESS until an AIO daemon has "
    "done it, and only after aio_return() may the caller reuse its buffer",
    validate=validator("aio-write"),
)
def aio_write_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    # O_SYNC: the daemon's write waits for the disk. Without it the daemon, woken at a better priority than
    # ours, would finish a write into the buffer cache before aio_write() even got back to user mode.
    fd = open_file(libc, FILE_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_SYNC, 0o644)
    with stack_locals(libc, AIOCB_SIZE + len(DATA)) as cb:
        buf = cb + AIOCB_SIZE
        umem.store(buf, DATA)
        umem.store(cb, bytes(AIOCB_SIZE))
        umem.store(cb, AIOCB_HEAD.pack(fd, 0, buf, len(DATA)))
        rc = libc.syscall("aio_write", cb)
        if rc == -1:
            err(libc, 1, argv[0], "aio_write")
        error = libc.syscall("aio_error", cb)  # at once, before printf gives the AIO daemon a chance to run
        printf(libc, f"aio_write(&cb) returned {rc}\n")
        printf(libc, f"aio_error(&cb) returned {error} ({ERRNO_NAMES.get(error, 'done')})\n")
        polls = 1
        with stack_locals(libc, TIMESPEC.size) as pause:
            umem.store(pause, TIMESPEC.pack(0, POLL_NS))
            while error == E.EINPROGRESS:  # the caller may do other work meanwhile; this one sleeps
                libc.syscall("nanosleep", pause, 0)
                error = libc.syscall("aio_error", cb)
                polls += 1
        printf(libc, f"aio_error(&cb) returned {error} after {polls} call{'s' if polls > 1 else ''}\n")
        printf(libc, f"aio_return(&cb) returned {libc.syscall('aio_return', cb)}: buf may be reused now\n")
    libc.syscall("close", fd)
    printf(libc, f"{FILE_PATH} holds {read_back(libc, FILE_PATH)!r}\n")
    return 0


# -- a kernel pointer passed to read() -----------------------------------------------------------------------


@program(
    "read-kernel-pointer",
    "read() from /dev/zero into a user buffer works; into a kernel address (KERNBASE) it fails with EFAULT: "
    "copyout() refuses any address above VM_MAXUSER_ADDRESS",
    validate=validator("read-kernel-pointer"),
)
def read_kernel_pointer_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    fd = open_file(libc, "/dev/zero", O_RDONLY)
    with stack_locals(libc, 16) as buf:
        umem.store(buf, b"\xff" * 16)
        n = libc.syscall("read", fd, buf, 16)
        printf(libc, f"read({fd}, {buf:#x}, 16) returned {n}: buf now {umem.load(buf, 16).hex()}\n")
    n = libc.syscall("read", fd, KERNBASE, 16)
    printf(libc, f"read({fd}, {KERNBASE:#x}, 16) returned {n}\n")
    if n == -1:
        err(libc, 1, argv[0], "read")
    return 0


# -- clock_gettime() without a trap --------------------------------------------------------------------------


@program(
    "clock-gettime",
    "clock_gettime(CLOCK_MONOTONIC) twice: where the timecounter is the TSC, libc reads the kernel's timehands "
    "in the shared page (the vdso) with lfence; rdtsc, and no system call is made; elsewhere (the lecture's HPET) "
    "the vdso says no and libc makes the system call",
    validate=validator("clock-gettime"),
)
def clock_gettime_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    with stack_locals(libc, 2 * TIMESPEC.size) as tp:
        first = libc.clock_gettime(CLOCK_MONOTONIC, tp)
        second = libc.clock_gettime(CLOCK_MONOTONIC, tp + TIMESPEC.size)
        t1 = load_int(tp) * 10**9 + load_int(tp + 8)
        t2 = load_int(tp + 16) * 10**9 + load_int(tp + 24)
    for rc, ns in ((first, t1), (second, t2)):
        printf(libc, f"clock_gettime(CLOCK_MONOTONIC) returned {rc}: {ns // 10**9}.{ns % 10**9:09d} s\n")
    printf(libc, f"between the two calls: {t2 - t1} ns\n")
    return 0
