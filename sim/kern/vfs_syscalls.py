"""File-system system calls (sys/kern/vfs_syscalls.c, FreeBSD 11): open, lseek, fsync, sync, stat.

Paths are copied in from user space with copyinstr(). In capability mode there is no global namespace: open(2)
and openat(2) are both CAPENABLED in FreeBSD 11 (capabilities.conf lists open so that its audit trail is kept),
so both enter, and namei() fails a lookup relative to AT_FDCWD with ECAPMODE.
"""

from __future__ import annotations

from sim.core.events import NameiCapabilityMode, UfsCreate
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import (
    EACCES,
    EBADF,
    ECAPMODE,
    EEXIST,
    EFAULT,
    EINVAL,
    EISDIR,
    ENOENT,
    ENOTCAPABLE,
    ENOTDIR,
    ESPIPE,
)
from sim.kern.kern_descrip import (
    DTYPE_VNODE,
    FWRITE,
    O_ACCMODE,
    O_CLOEXEC,
    O_CREAT,
    O_EXCL,
    O_TRUNC,
    STAT,
    falloc,
    fget,
    pack_stat,
)
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread
from sim.kern.vfs_subr import VDIR, VREG, Vnode, new_vnode, parent_dir, vfs
from sim.kern.vfs_vmio import vnode_pager_setsize
from sim.kern.vfs_vnops import ffs_fsync, vnops, vop_getattr

AT_FDCWD = -100
MAXPATHLEN = 1024


def copyinstr(uaddr: int, maxlen: int = MAXPATHLEN) -> tuple[int, str]:
    """A path (or argument) string from user space: (0, text), EFAULT or ENAMETOOLONG."""
    from sim.kern import support

    buf = bytearray(maxlen)
    error, copied = support.copyinstr(uaddr, buf, maxlen)
    if error:
        return error, ""
    return 0, buf[: copied - 1].decode("utf-8", "replace")


def normalize(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


@kfunc
def namei(path: str) -> tuple[int, Vnode | None]:
    """Look a path up in the namespace: (0, vnode) or (ENOENT, None)."""
    machine = pcpu.machine
    machine.charge(machine.profile.vop_ns)
    vp = vfs().names.get(normalize(path))
    return (0, vp) if vp else (ENOENT, None)


def namei_start(td: Thread, dirfd: int, upath: int) -> tuple[int, str]:
    """What namei() does before the lookup (sys/kern/vfs_lookup.c, FreeBSD 11): copy the path in, refuse an empty
    one, and in capability mode refuse the global namespace: ECAPMODE relative to AT_FDCWD; relative to a
    directory descriptor the lookup is held to that directory, so an absolute path is ENOTCAPABLE."""
    from sim.kern.subr_syscall import IN_CAPABILITY_MODE

    error, path = copyinstr(upath)
    if error:
        return error, ""
    if not path:
        return ENOENT, ""
    if IN_CAPABILITY_MODE(td):
        if dirfd == AT_FDCWD:
            pcpu.machine.emit("hook", "namei", NameiCapabilityMode(path))
            return ECAPMODE, ""
        return ENOTCAPABLE, ""  # only absolute paths are modelled, and strict-relative lookup refuses them
    return 0, path


@syscall_handler
@kfunc
def sys_open(td: Thread, path: int, flags: int, mode: int) -> int:
    return kern_openat(td, AT_FDCWD, path, flags, mode)


@syscall_handler
@kfunc
def sys_openat(td: Thread, fd: int, path: int, flag: int, mode: int) -> int:
    return kern_openat(td, fd, path, flag, mode)


def kern_openat(td: Thread, fd: int, upath: int, flags: int, mode: int) -> int:
    fd = (fd & 0xFFFFFFFF) - (1 << 32) if fd & 0x80000000 else fd & 0xFFFFFFFF  # an int in a 64-bit register
    if flags & O_ACCMODE == O_ACCMODE:
        return EINVAL
    error, path = namei_start(td, fd, upath)
    if error:
        return error
    if fd != AT_FDCWD and not path.startswith("/"):
        return ENOTDIR  # only absolute paths and the (root) working directory are modelled
    error, vp = vn_open(normalize(path), flags, mode)
    if error:
        return error
    fflags = flags + 1  # FFLAGS: O_RDONLY -> FREAD, O_WRONLY -> FWRITE, O_RDWR -> both
    error, newfd = falloc(td, DTYPE_VNODE, fflags, vnops, vp, bool(flags & O_CLOEXEC))
    if error:
        return error
    td.td_proc.p_fd.fd_ofiles[newfd].f_vnode = vp
    td.set_retval(0, newfd)
    return 0


@kfunc
def vn_open(path: str, flags: int, mode: int) -> tuple[int, Vnode | None]:
    names = vfs().names
    vp = names.get(path)
    if vp is None:
        if not flags & O_CREAT:
            return ENOENT, None
        parent = names.get(parent_dir(path))
        if parent is None:
            return ENOENT, None
        if parent.v_type != VDIR:
            return ENOTDIR, None
        vp = names[path] = new_vnode(VREG, path, mode & 0o7777)
        pcpu.machine.emit("mem", "ufs_create", UfsCreate(path))
    elif flags & O_CREAT and flags & O_EXCL:
        return EEXIST, None
    fflags = flags + 1
    if vp.v_type == VDIR and fflags & FWRITE:
        return EISDIR, None
    if vp.v_image is not None and fflags & FWRITE:
        return EACCES, None  # the simulated programs are read-only
    if flags & O_TRUNC and vp.v_type == VREG and fflags & FWRITE:
        vp.i_size = 0
        vp.v_disk.clear()
        vp.v_bufobj.clear()
        vnode_pager_setsize(vp, 0)
    return 0, vp


@syscall_handler
@kfunc
def sys_lseek(td: Thread, fd: int, offset: int, whence: int) -> int:
    fp = fget(td, fd)
    if fp is None:
        return EBADF
    if fp.f_ops.fo_seek is None:
        return ESPIPE
    error, pos = fp.f_ops.fo_seek(fp, _signed64(offset), whence, td)
    if error == 0:
        td.set_retval(0, pos)
    return error


@syscall_handler
@kfunc
def sys_fsync(td: Thread, fd: int) -> int:
    """Write the file's dirty buffers and wait until the disk has them."""
    fp = fget(td, fd)
    if fp is None:
        return EBADF
    if fp.f_vnode is None:
        return EINVAL
    return ffs_fsync(fp.f_vnode, wait=True)


@syscall_handler
@kfunc
def sys_sync(td: Thread) -> int:
    """Start writing every dirty buffer; do not wait (sync(2) on FreeBSD returns before the disk is done)."""
    for vp in list(vfs().names.values()):
        if vp.bo_dirty:
            ffs_fsync(vp, wait=False)
    return 0


@syscall_handler
@kfunc
def sys_stat(td: Thread, path: int, ub: int) -> int:
    return kern_statat(td, path, ub)


@syscall_handler
@kfunc
def sys_lstat(td: Thread, path: int, ub: int) -> int:
    return kern_statat(td, path, ub)


def kern_statat(td: Thread, upath: int, ub: int) -> int:
    from sim.kern.support import copyout

    error, path = copyinstr(upath)
    if error:
        return error
    error, vp = namei(path)
    if error:
        return error
    st = pack_stat(*vop_getattr(vp), vp.v_ino, td.td_ucred.cr_uid)
    return EFAULT if copyout(st, ub, STAT.size) else 0


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


@syscall_handler
@kfunc
def sys_readlink(td: Thread, path: int, buf: int, count: int) -> int:
    """The simulated file system has no symbolic links: a path that exists is EINVAL, one that does not ENOENT."""
    error, name = copyinstr(path)
    if error:
        return error
    error, _ = namei(name)
    return error or EINVAL


F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4


@syscall_handler
@kfunc
def sys_access(td: Thread, path: int, amode: int) -> int:
    """access(2) checks with the real uid: root may read and write anything, and execute what has an x bit."""
    error, name = copyinstr(path)
    if error:
        return error
    error, vp = namei(name)
    if error:
        return error
    cred = td.td_ucred
    if cred.cr_ruid == 0:
        return EACCES if amode & X_OK and not vp.v_mode & 0o111 else 0
    allowed = vp.v_mode & 0o7  # the simulated files belong to root: others get the "other" bits
    wanted = (4 if amode & R_OK else 0) | (2 if amode & W_OK else 0) | (1 if amode & X_OK else 0)
    return EACCES if wanted & ~allowed else 0
