"""File descriptors (sys/kern/kern_descrip.c, FreeBSD 11): the per-process table of open files.

A descriptor indexes the process's filedesc; the struct file it names says what kind of object is open (a
vnode, a pipe, a socket) and carries that object's fileops, so read(2) and write(2) reach pipe_read,
soo_read, vn_read, ... through one indirect call, fo_read/fo_write. fork() copies the table (both processes
then share each struct file, and its offset); close() drops a reference; the object is closed with the last.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EBADF, EFAULT, EINVAL, EMFILE
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread

# struct file's f_type (sys/sys/file.h)
DTYPE_VNODE = 1
DTYPE_SOCKET = 2
DTYPE_PIPE = 3

# f_flag (sys/sys/fcntl.h): FFLAGS(oflags) = oflags + 1, so O_RDONLY gives FREAD
FREAD = 0x0001
FWRITE = 0x0002
O_NONBLOCK = FNONBLOCK = 0x0004
O_APPEND = FAPPEND = 0x0008
O_FSYNC = 0x0080
O_CREAT = 0x0200
O_TRUNC = 0x0400
O_EXCL = 0x0800
O_DIRECT = 0x00010000  # bypass the buffer cache as far as the file system can (ffs: release each buffer at once)
O_CLOEXEC = 0x00100000
O_ACCMODE = 0x0003
FMASK = FREAD | FWRITE | FAPPEND | FNONBLOCK | O_FSYNC | O_DIRECT
FCNTLFLAGS = FAPPEND | FNONBLOCK | O_FSYNC | O_DIRECT

# fcntl(2) commands
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
FD_CLOEXEC = 1
UF_EXCLOSE = 0x01  # fd_ofileflags: close on exec

# ioctls (sys/sys/filio.h)
FIONREAD = 0x4004667F
FIODTYPE = 0x4004667A  # a device's type (D_DISK, D_TTY, D_MEM, ...): dd asks it of its input and output
FIONBIO = 0x8004667E

NDFILE = 20  # the table's initial size; it grows as needed
MAXFILES = 1024  # RLIMIT_NOFILE: EMFILE beyond it

# struct stat as FreeBSD 11 defines it (before ino64): dev, ino, mode, nlink, uid, gid, rdev, atim, mtim,
# ctim, size, blocks, blksize, flags, gen, lspare, birthtim
STAT = struct.Struct("<IIHHIIIqqqqqqqqIIIiqq")
S_IFIFO = 0o010000
S_IFCHR = 0o020000
S_IFDIR = 0o040000
S_IFREG = 0o100000
S_IFSOCK = 0o140000


def pack_stat(mode: int, size: int, rdev: int, blksize: int, ino: int, uid: int) -> bytes:
    """A struct stat; the simulated file system keeps no timestamps, so all four times are the current time."""
    now_s, now_ns = divmod(pcpu.machine.now, 10**9)
    times = (now_s, now_ns) * 3
    return STAT.pack(0x5A, ino, mode, 1, uid, 0, rdev, *times, size, (size + 511) // 512, blksize, 0, 0, 0, *times[:2])


@dataclass(frozen=True)
class Fileops:
    """struct fileops: what each kind of open object does for the generic descriptor system calls."""

    fo_read: Callable
    fo_write: Callable
    fo_ioctl: Callable
    fo_stat: Callable  # returns (mode, size, rdev, blksize)
    fo_close: Callable
    fo_seek: Callable | None = None  # None: ESPIPE
    fo_poll: Callable | None = None  # (fp, events, td) -> the events ready now; None: always ready


@dataclass(eq=False, repr=False)
class File:
    """struct file: one open object, shared by every descriptor (and process) that refers to it."""

    f_type: int
    f_flag: int
    f_ops: Fileops
    f_data: object
    f_offset: int = 0
    f_count: int = 1
    f_vnode: object = None

    def __repr__(self) -> str:
        return f"file (type {self.f_type}, {self.f_count} reference(s))"


@dataclass
class Filedesc:
    fd_ofiles: list[File | None] = field(default_factory=lambda: [None] * NDFILE)
    fd_ofileflags: list[int] = field(default_factory=lambda: [0] * NDFILE)
    fd_refcnt: int = 1


def fdinit() -> Filedesc:
    return Filedesc()


def fdcopy(fdp: Filedesc | None) -> Filedesc:
    """fork: the child's table refers to the same open files (each gets one more reference)."""
    new = Filedesc()
    if fdp is None:
        return new
    new.fd_ofiles = list(fdp.fd_ofiles)
    new.fd_ofileflags = list(fdp.fd_ofileflags)
    for fp in new.fd_ofiles:
        if fp is not None:
            fp.f_count += 1
    return new


def fdshare(fdp: Filedesc | None) -> Filedesc:
    fdp = fdp or Filedesc()
    fdp.fd_refcnt += 1
    return fdp


def _fdp(td: Thread) -> Filedesc:
    p = td.td_proc
    if p.p_fd is None:
        p.p_fd = fdinit()
    return p.p_fd


@kfunc
def falloc(td: Thread, f_type: int, flags: int, ops: Fileops, data: object, cloexec: bool = False) -> tuple[int, int]:
    """Allocate a struct file and the lowest free descriptor for it: (error, fd)."""
    fdp = _fdp(td)
    fd = fdalloc(fdp)
    if fd < 0:
        return EMFILE, -1
    fdp.fd_ofiles[fd] = File(f_type, flags & FMASK, ops, data)
    fdp.fd_ofileflags[fd] = UF_EXCLOSE if cloexec else 0
    return 0, fd


def fdalloc(fdp: Filedesc, minfd: int = 0) -> int:
    for fd in range(minfd, MAXFILES):
        if fd >= len(fdp.fd_ofiles):
            grow = fd + 1 - len(fdp.fd_ofiles)
            fdp.fd_ofiles.extend([None] * grow)
            fdp.fd_ofileflags.extend([0] * grow)
        if fdp.fd_ofiles[fd] is None:
            return fd
    return -1


def fget(td: Thread, fd: int) -> File | None:
    """The open file behind a descriptor, or None (the caller fails with EBADF)."""
    ofiles = _fdp(td).fd_ofiles
    machine = pcpu.machine
    machine.charge(machine.profile.file_op_ns)
    if 0 <= fd < len(ofiles):
        return ofiles[fd]
    return None


def fdrop(fp: File, td: Thread) -> int:
    fp.f_count -= 1
    if fp.f_count == 0:
        return fp.f_ops.fo_close(fp, td)
    return 0


@kfunc
def kern_close(td: Thread, fd: int) -> int:
    fdp = _fdp(td)
    if not 0 <= fd < len(fdp.fd_ofiles) or fdp.fd_ofiles[fd] is None:
        return EBADF
    fp = fdp.fd_ofiles[fd]
    fdp.fd_ofiles[fd] = None
    fdp.fd_ofileflags[fd] = 0
    return fdrop(fp, td)


def fdescfree(td: Thread) -> None:
    """exit: close every descriptor."""
    fdp = td.td_proc.p_fd
    if fdp is None:
        return
    fdp.fd_refcnt -= 1
    if fdp.fd_refcnt > 0:
        return
    for fd, fp in enumerate(fdp.fd_ofiles):
        if fp is not None:
            fdp.fd_ofiles[fd] = None
            fdrop(fp, td)


def fdcloseexec(td: Thread) -> None:
    fdp = _fdp(td)
    for fd, fp in enumerate(fdp.fd_ofiles):
        if fp is not None and fdp.fd_ofileflags[fd] & UF_EXCLOSE:
            kern_close(td, fd)


@syscall_handler
@kfunc
def sys_close(td: Thread, fd: int) -> int:
    return kern_close(td, fd)


@syscall_handler
@kfunc
def sys_dup(td: Thread, fd: int) -> int:
    return do_dup(td, fd, None)


@syscall_handler
@kfunc
def sys_dup2(td: Thread, fd: int, to: int) -> int:
    return do_dup(td, fd, to)


def do_dup(td: Thread, old: int, new: int | None) -> int:
    fdp = _fdp(td)
    fp = fget(td, old)
    if fp is None:
        return EBADF
    if new is None:
        new = fdalloc(fdp)
        if new < 0:
            return EMFILE
    elif not 0 <= new < MAXFILES:
        return EBADF
    elif new == old:
        td.set_retval(0, new)
        return 0
    else:
        if new >= len(fdp.fd_ofiles):
            fdalloc(fdp, new)
        if fdp.fd_ofiles[new] is not None:
            kern_close(td, new)
    fp.f_count += 1
    fdp.fd_ofiles[new] = fp
    fdp.fd_ofileflags[new] = 0
    td.set_retval(0, new)
    return 0


@syscall_handler
@kfunc
def sys_fcntl(td: Thread, fd: int, cmd: int, arg: int) -> int:
    fdp = _fdp(td)
    fp = fget(td, fd)
    if fp is None:
        return EBADF
    if cmd == F_DUPFD:
        new = fdalloc(fdp, arg)
        if new < 0:
            return EMFILE
        return do_dup(td, fd, new)
    if cmd == F_GETFD:
        td.set_retval(0, FD_CLOEXEC if fdp.fd_ofileflags[fd] & UF_EXCLOSE else 0)
    elif cmd == F_SETFD:
        fdp.fd_ofileflags[fd] = UF_EXCLOSE if arg & FD_CLOEXEC else 0
    elif cmd == F_GETFL:
        td.set_retval(0, fp.f_flag - 1)  # OFLAGS(f_flag)
    elif cmd == F_SETFL:
        fp.f_flag = (fp.f_flag & ~FCNTLFLAGS) | (arg & FCNTLFLAGS)
    else:
        return EINVAL
    return 0


@syscall_handler
@kfunc
def sys_fstat(td: Thread, fd: int, sb: int) -> int:
    from sim.kern.support import copyout

    fp = fget(td, fd)
    if fp is None:
        return EBADF
    vp = fp.f_vnode
    st = pack_stat(*fp.f_ops.fo_stat(fp, td), vp.v_ino if vp is not None else 0, td.td_ucred.cr_uid)
    if copyout(st, sb, STAT.size) != 0:
        return EFAULT
    return 0
