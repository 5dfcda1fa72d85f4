"""More of the lecture's examples as small C programs, one mechanism each (the scenarios of
sim/scenarios/lecture_slides.py run them).

- getauid: the lecture's example of a system call's body (slide "getauid"): the audit ID, or ENOSYS in a jail,
  EPERM without the privilege (the kernel's `jailed` and `uid` switches choose).
- capmode: cap_enter() changes the process's credential; the thread's cached copy is refreshed by the next
  system call's thread_cow_update, from which on open() is refused with ECAPMODE (slides "Security and
  reliability (1)/(2)").
- nosys: a system-call number syscalls.master does not list reaches nosys(): SIGSYS, and ENOSYS when SIGSYS is
  ignored (slide "System-call table: syscalls.master").
- trapvec: one system call and one page fault, to watch both ways into the kernel (slide "System-call
  invocation").
- cow: fork() then writes, the parent's first: copy-on-write copies only the pages written, each for its
  writer (slide "So: back to VM").
- aio-reuse: aio_write() and the buffer overwritten before aio_return(): shared semantics (slide "System-call
  asynchrony").
- mmap-file: a file on the disk, in no page of memory, mapped and read through the mapping: each first touch a
  hard fault that reads the page from the disk (slide "System-call asynchrony"). With -r it is read() after
  mmap(): the touch finds the buffer's pages resident in the file's vm_object; with -w a write() shows through
  the mapping (slide "Mach VM": the merged VM/buffer cache).
- forkexec: fork() then execve(): the child's copied address space is replaced (slide "Mach VM").
- prezero: sleeps, then touches new pages: with idle page zeroing on, they were zeroed while the CPU was idle
  (slide "So: back to VM": background page zeroing).
- superpage: touching every page of a 2 MiB-aligned region lets the VM system promote it to one 2 MiB mapping
  (slide "So: back to VM": superpages and TLB reach).

Each prints what its calls returned: what it shows is what the simulated kernel did.
"""

from __future__ import annotations

from sim.kern import errno as E
from sim.kern.kern_sig import SIG_IGN, SIGSYS
from sim.kern.vfs_aio import AIOCB_SIZE
from sim.kern.vfs_subr import FS_BSIZE
from sim.machine.physmem import PAGE_SIZE
from sim.user import umem
from sim.user.lecture_files import AIOCB_HEAD, O_RDONLY, O_SYNC, O_TRUNC, O_WRONLY, POLL_NS, TIMESPEC, open_file
from sim.user.lecture_programs import (
    MAP_ANON,
    MAP_PRIVATE,
    PROT_READ,
    PROT_WRITE,
    anonymous,
    err,
    errno_text,
    getopt,
    printf,
    validator,
)
from sim.user.libc import Libc
from sim.user.libc_proc import stack_locals
from sim.user.programs import program

O_RDWR, O_CREAT = 0x0002, 0x0200
MAP_SHARED = 0x0001
SUPERPAGE = 2 << 20  # amd64's 2 MiB page (NBPDR)
NOSYS_CODE = 999  # a number syscalls.master leaves empty


def result(libc: Libc, call: str, returned: int) -> str:
    if returned == -1:
        return f"{call} returned -1: {errno_text(libc.errno)}\n"
    return f"{call} returned {returned}\n"


# -- getauid(2) ----------------------------------------------------------------------------------------------


@program(
    "getauid",
    "getauid(2): the audit user ID, or ENOSYS in a jail and EPERM without PRIV_AUDIT_GETAUDIT",
    validate=validator("getauid"),
)
def getauid_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    with stack_locals(libc, 4) as auid:
        umem.store(auid, (0xFFFFFFFF).to_bytes(4, "little"))  # AU_DEFAUDITID until the kernel says otherwise
        rc = libc.syscall("getauid", auid)
        printf(libc, result(libc, "getauid(&auid)", rc))
        if rc == 0:
            printf(libc, f"auid = {int.from_bytes(umem.load(auid, 4), 'little')}\n")
    return 0 if rc == 0 else 1


# -- cap_enter(2): a new credential, picked up by thread_cow_update -------------------------------------------


@program(
    "capmode",
    "cap_enter() puts the process in capability mode: getpid() still works, open() fails with ECAPMODE",
    validate=validator("capmode"),
)
def capmode_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    printf(libc, result(libc, "cap_enter()", libc.syscall("cap_enter")))
    printf(libc, result(libc, "getpid()", libc.getpid()))
    path = b"/etc/passwd\0"
    with stack_locals(libc, len(path)) as cpath:
        umem.store(cpath, path)
        fd = libc.syscall("openat", -100, cpath, O_RDONLY, 0)
    printf(libc, result(libc, 'open("/etc/passwd")', fd))
    return 0 if fd == -1 and libc.errno == E.ECAPMODE else 1


# -- nosys: a number with no system call ---------------------------------------------------------------------

NOSYS_USAGE = "nosys [-i]"


@program(
    "nosys",
    f"syscall({NOSYS_CODE}): no such system call, so nosys() posts SIGSYS (which kills the process); with -i "
    "SIGSYS is ignored and the call fails with ENOSYS",
    validate=validator(NOSYS_USAGE, flags="i"),
)
def nosys_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    flags, _ = getopt(argv, NOSYS_USAGE, flags="i")
    if "i" in flags:
        libc.sigaction(SIGSYS, SIG_IGN)
    printf(libc, result(libc, f"syscall({NOSYS_CODE})", libc.syscall("syscall", NOSYS_CODE)))
    return 0


# -- trapvec: the two ways in --------------------------------------------------------------------------------


@program(
    "trapvec",
    "getpid() enters the kernel through the syscall instruction (MSR_LSTAR); a first touch of a new page "
    "through the IDT's page-fault vector",
    validate=validator("trapvec"),
)
def trapvec_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    pid = libc.getpid()
    page = anonymous(libc, PAGE_SIZE)
    umem.store(page, b"x")
    printf(libc, f"getpid() returned {pid}; stored to the new page at {page:#x}\n")
    return 0


# -- copy-on-write after fork --------------------------------------------------------------------------------

COW_PAGES = 4


@program(
    "cow",
    f"fork() shares {COW_PAGES} written pages copy-on-write; the parent writes page 1, then the child page 0: "
    "each write copies one page, for its writer only, and pages 2 and 3 stay shared",
    validate=validator("cow"),
)
def cow_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    buf = anonymous(libc, COW_PAGES * PAGE_SIZE)
    for page in range(COW_PAGES):
        umem.store(buf + page * PAGE_SIZE, bytes([ord("a") + page]))

    def child(libc: Libc) -> int:
        umem.store(buf, b"C")
        printf(libc, f"child: page 0 holds {umem.load(buf, 1)!r}, page 1 {umem.load(buf + PAGE_SIZE, 1)!r}\n")
        return 0

    pid = libc.fork(child)
    if pid == -1:
        err(libc, 1, argv[0], "fork")
    umem.store(buf + PAGE_SIZE, b"P")  # before the child has run: the page is still shared
    libc.waitpid(pid)
    printf(libc, f"parent: page 0 holds {umem.load(buf, 1)!r}, page 1 {umem.load(buf + PAGE_SIZE, 1)!r}\n")
    return 0


# -- aio_write() and a buffer reused too early -----------------------------------------------------------------

REUSE_PATH = "/tmp/aio-reuse"
REUSE_SIZE = 2 * FS_BSIZE  # two file-system blocks: the AIO daemon copies them one at a time


@program(
    "aio-reuse",
    f"aio_write() of a {REUSE_SIZE // 1024} KiB buffer of 'A's to {REUSE_PATH} (O_SYNC), then the buffer is "
    "overwritten with 'B's before aio_return(): the AIO daemon copies whatever the buffer holds when it gets to "
    "each block (shared semantics), so the file ends up with both",
    validate=validator("aio-reuse"),
)
def aio_reuse_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    fd = open_file(libc, REUSE_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_SYNC, 0o644)
    buf = anonymous(libc, REUSE_SIZE)
    umem.memset(buf, ord("A"), REUSE_SIZE)
    with stack_locals(libc, AIOCB_SIZE) as cb:
        umem.store(cb, bytes(AIOCB_SIZE))
        umem.store(cb, AIOCB_HEAD.pack(fd, 0, buf, REUSE_SIZE))
        printf(libc, result(libc, "aio_write(&cb)", libc.syscall("aio_write", cb)))
        umem.memset(buf, ord("B"), REUSE_SIZE)  # the mistake: the job is still in progress
        with stack_locals(libc, TIMESPEC.size) as pause:
            umem.store(pause, TIMESPEC.pack(0, POLL_NS))
            while libc.syscall("aio_error", cb) == E.EINPROGRESS:
                libc.syscall("nanosleep", pause, 0)
        printf(libc, result(libc, "aio_return(&cb)", libc.syscall("aio_return", cb)))
    libc.syscall("close", fd)
    fd = open_file(libc, REUSE_PATH, O_RDONLY)
    n = libc.syscall("read", fd, buf, REUSE_SIZE)
    data = umem.load(buf, max(n, 0))
    printf(libc, f"{REUSE_PATH}: {data.count(b'A')} bytes 'A', {data.count(b'B')} bytes 'B'\n")
    return 0


# -- mmap() of a file: demand paging, and the merged VM/buffer cache (sim/user/lecture_mapped.py) ---------------

MMAP_USAGE = "mmap-file [-rw]"


@program(
    "mmap-file",
    "maps a file of 3 pages on the disk, in no page of memory, and reads a byte of each page: each first touch faults "
    "and the vnode pager reads the page. -r: read() the file after mmap(): the touch finds the buffer's pages "
    "resident (a soft fault). -w: then write() a byte into page 1 and load it through the mapping",
    validate=validator(MMAP_USAGE, flags="rw"),
)
def mmap_file_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    from sim.user.lecture_mapped import MMAP_PAGES, install_mapped_file, read_after_mmap, write_through

    flags, size = getopt(argv, MMAP_USAGE, flags="rw")[0], MMAP_PAGES * PAGE_SIZE
    fd = open_file(libc, install_mapped_file(), O_RDWR if "w" in flags else O_RDONLY)
    mapped = libc.syscall("mmap", 0, size, PROT_READ, MAP_SHARED, fd, 0)
    if mapped == -1:
        err(libc, 1, argv[0], "mmap")
    printf(libc, f"mmap() returned {mapped & (1 << 64) - 1:#x}: nothing read yet\n")
    if "r" in flags:
        read_after_mmap(libc, fd, size)
    seen = bytes(umem.load(mapped + page * PAGE_SIZE, 1)[0] for page in range(MMAP_PAGES))
    printf(libc, f"first byte of each mapped page: {seen!r}\n")
    if "w" in flags:
        write_through(libc, fd, mapped)
    libc.syscall("close", fd)
    return 0


# -- superpages ------------------------------------------------------------------------------------------------


@program(
    "superpage",
    "maps 4 MiB, touches every 4 KiB page of the 2 MiB-aligned half inside it, then reads it again: once the "
    "reservation is full the VM system promotes it to one 2 MiB mapping (a PDE with PG_PS), which one TLB entry "
    "covers",
    validate=validator("superpage"),
)
def superpage_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    region = libc.syscall("mmap", 0, 2 * SUPERPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0)
    if region == -1:
        err(libc, 1, argv[0], "mmap")
    aligned = (region + SUPERPAGE - 1) & ~(SUPERPAGE - 1)
    for offset in range(0, SUPERPAGE, PAGE_SIZE):
        umem.store(aligned + offset, b"s")
    total = sum(umem.load(aligned + offset, 1)[0] for offset in range(0, SUPERPAGE, 64 * PAGE_SIZE))
    printf(libc, f"touched {SUPERPAGE // PAGE_SIZE} pages at {aligned:#x}; checksum {total}\n")
    return 0


# -- background page zeroing -----------------------------------------------------------------------------------

PREZERO_PAGES = 8
PREZERO_SLEEP_NS = 2_000_000  # long enough for the idle CPU to zero more pages than the program then touches


@program(
    "prezero",
    f"sleeps {PREZERO_SLEEP_NS // 1_000_000} ms, then maps {PREZERO_PAGES} pages and touches each: with the kernel's "
    "idle page zeroing on (vm.idlezero_enable), the idle CPU zeroes free pages meanwhile and each fault finds one "
    "already zero",
    validate=validator("prezero"),
)
def prezero_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    with stack_locals(libc, TIMESPEC.size) as pause:
        umem.store(pause, TIMESPEC.pack(0, PREZERO_SLEEP_NS))
        libc.syscall("nanosleep", pause, 0)
    buf = anonymous(libc, PREZERO_PAGES * PAGE_SIZE)
    for page in range(PREZERO_PAGES):
        umem.store(buf + page * PAGE_SIZE, b"z")
    printf(libc, f"touched {PREZERO_PAGES} new pages at {buf:#x}\n")
    return 0


# -- fork() then execve() --------------------------------------------------------------------------------------

EXEC_PATH = "/bin/getpid"


@program(
    "forkexec",
    f"fork(), and the child execve()s {EXEC_PATH}: its copied address space is replaced by a new one built from "
    "the program's image; the parent waits",
    validate=validator("forkexec"),
)
def forkexec_main(libc: Libc, argv: tuple[str, ...], env: dict[str, str]) -> int:
    def child(libc: Libc) -> int:
        path = EXEC_PATH.encode() + b"\0"
        with stack_locals(libc, len(path) + 16) as block:
            umem.store(block + 16, path)
            umem.store(block, (block + 16).to_bytes(8, "little") + bytes(8))  # argv = {path, NULL}
            libc.syscall("execve", block + 16, block, 0)
        err(libc, 127, argv[0], f"execve {EXEC_PATH}")
        return 127

    pid = libc.fork(child)
    if pid == -1:
        err(libc, 1, argv[0], "fork")
    got, status = libc.waitpid(pid)
    printf(libc, f"parent: child {got} ran {EXEC_PATH} and exited with {status >> 8}\n")
    return 0
