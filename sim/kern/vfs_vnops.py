"""Files that are vnodes (sys/kern/vfs_vnops.c, FreeBSD 11), and the file system's read, write and fsync
(after sys/ufs/ffs/ffs_vnops.c).

vn_read/vn_write are the fileops of an open vnode. A regular file's data moves block by block through the
buffer cache: ffs_write() copies the user's bytes into a block's buffer and, for a block it only partly
filled, leaves it as a delayed write (bdwrite); full blocks are gathered into clusters of four and written
asynchronously (cluster_write). A file opened with O_DIRECT (IO_DIRECT) gives each buffer back once its bytes
are copied (B_DIRECT | B_RELBUF: the buffer and its pages are freed), so the next read of the block goes to the
disk, and a partly filled block is written at once (bawrite) rather than delayed.
A device vnode (/dev/zero, /dev/null, the terminal) hands the uio to its
driver (devfs_read_f/devfs_write_f -> d_read/d_write).
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EINVAL, EISDIR, ENOIOCTL
from sim.kern.kern_descrip import (
    FAPPEND,
    FIODTYPE,
    FIONBIO,
    FIONREAD,
    O_DIRECT,
    O_FSYNC,
    S_IFCHR,
    S_IFDIR,
    S_IFREG,
    File,
    Fileops,
)
from sim.kern.null import D_TYPEMASK
from sim.kern.proc import Thread
from sim.kern.uio import Uio, uiomove
from sim.kern.vfs_bio import B_DIRECT, B_RELBUF, bawrite, bdwrite, bread, brelse, bwrite, getblk
from sim.kern.vfs_subr import FS_BSIZE, VCHR, VDIR, VREG, Vnode
from sim.kern.vfs_vmio import uiomove_fromphys, vnode_pager_setsize

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
MAXCLUSTER = 128 * 1024 // FS_BSIZE  # MAXPHYS / fs_bsize: blocks in a write cluster


def _vop() -> None:
    machine = pcpu.machine
    machine.charge(machine.profile.vop_ns)


@kfunc
def vn_read(fp: File, uio: Uio, td: Thread) -> int:
    vp: Vnode = fp.f_vnode
    _vop()
    if vp.v_type == VCHR:
        return vp.v_rdev.d_read(vp.v_rdev, uio, 0)  # devfs_read_f
    if vp.v_type == VDIR:
        return EISDIR
    uio.uio_offset = fp.f_offset
    error = ffs_read(vp, uio, direct=bool(fp.f_flag & O_DIRECT))
    fp.f_offset = uio.uio_offset
    return error


@kfunc
def vn_write(fp: File, uio: Uio, td: Thread) -> int:
    vp: Vnode = fp.f_vnode
    _vop()
    if vp.v_type == VCHR:
        return vp.v_rdev.d_write(vp.v_rdev, uio, 0)  # devfs_write_f
    uio.uio_offset = vp.i_size if fp.f_flag & FAPPEND else fp.f_offset
    error = ffs_write(vp, uio, sync=bool(fp.f_flag & O_FSYNC), direct=bool(fp.f_flag & O_DIRECT))
    fp.f_offset = uio.uio_offset
    return error


@kfunc
def ffs_read(vp: Vnode, uio: Uio, direct: bool = False) -> int:
    while uio.uio_resid > 0 and uio.uio_offset < vp.i_size:
        lbn, blkoffset = divmod(uio.uio_offset, FS_BSIZE)
        xfersize = min(FS_BSIZE - blkoffset, uio.uio_resid, vp.i_size - uio.uio_offset)
        bp = bread(vp, lbn, FS_BSIZE)
        error = _buf_uiomove(bp, xfersize, uio, blkoffset)
        if direct:
            bp.b_flags |= B_DIRECT | B_RELBUF
            brelse(bp)
        if error:
            return error
    return 0


def _buf_uiomove(bp, xfersize: int, uio: Uio, blkoffset: int) -> int:
    """ffs_read's and ffs_write's copy: through b_data if the buffer is mapped (vn_io_fault_uiomove), else page by
    page (vn_io_fault_pgmove -> uiomove_fromphys): a file's buffers are unmapped (sim/kern/vfs_vmio.py)."""
    if bp.b_data is not None:
        return uiomove(bp.b_data, xfersize, uio, blkoffset)
    return uiomove_fromphys(bp.b_pages, blkoffset, xfersize, uio)


@kfunc
def ffs_write(vp: Vnode, uio: Uio, sync: bool = False, direct: bool = False) -> int:
    while uio.uio_resid > 0:
        lbn, blkoffset = divmod(uio.uio_offset, FS_BSIZE)
        xfersize = min(FS_BSIZE - blkoffset, uio.uio_resid)
        if xfersize < FS_BSIZE:
            bp = bread(vp, lbn, FS_BSIZE)  # read-modify-write of a partial block
        else:
            bp = getblk(vp, lbn, FS_BSIZE)
        error = _buf_uiomove(bp, xfersize, uio, blkoffset)
        if error:
            return error
        if uio.uio_offset > vp.i_size:
            vp.i_size = uio.uio_offset
            vnode_pager_setsize(vp, vp.i_size)
        if direct:
            bp.b_flags |= B_DIRECT | B_RELBUF  # given back once written
        if sync:
            bwrite(bp)
        elif xfersize + blkoffset == FS_BSIZE:
            cluster_write(vp, bp)
        elif direct:
            bawrite(bp)
        else:
            vp.v_clen = 0
            bdwrite(bp)  # a partial block: the syncer writes it in about 30 seconds
    return 0


def cluster_write(vp: Vnode, bp) -> None:
    """Full blocks written in sequence are held back until a cluster is complete, then written together."""
    bdwrite(bp)
    vp.v_clen += 1
    if vp.v_clen >= MAXCLUSTER:
        vp.v_clen = 0
        first = bp.b_lblkno - MAXCLUSTER + 1
        for lbn in range(first, bp.b_lblkno + 1):
            cluster_bp = vp.v_bufobj.get(lbn)
            if cluster_bp is not None and cluster_bp.b_flags & 0x80:  # B_DELWRI
                bawrite(cluster_bp)


@kfunc
def ffs_fsync(vp: Vnode, wait: bool) -> int:
    """Start a write of every dirty buffer; with `wait` (fsync(2)), sleep until they are all on the disk."""
    from sim.kern.kern_synch import msleep
    from sim.kern.sched import PRIBIO
    from sim.kern.vfs_bio import B_DELWRI

    for bp in list(vp.v_bufobj.values()):
        if bp.b_flags & B_DELWRI:
            bawrite(bp)
    while wait and vp.bo_numoutput > 0:
        msleep(vp, PRIBIO, "bo_wwait")
    return 0


def vn_ioctl(fp: File, com: int, td: Thread) -> tuple[int, int | None]:
    vp: Vnode = fp.f_vnode
    if vp.v_type == VCHR:
        if com == FIODTYPE:  # devfs_ioctl_f answers this one itself
            return 0, vp.v_rdev.d_flags & D_TYPEMASK
        return vp.v_rdev.d_ioctl(vp.v_rdev, com, td)
    if com == FIONREAD and vp.v_type == VREG:
        return 0, max(0, vp.i_size - fp.f_offset)
    if com == FIONBIO:
        return 0, None
    return ENOIOCTL, None


def vop_getattr(vp: Vnode) -> tuple[int, int, int, int]:
    """(mode, size, rdev, blksize) for stat(2)."""
    kind = {VREG: S_IFREG, VDIR: S_IFDIR, VCHR: S_IFCHR}[vp.v_type]
    return kind | vp.v_mode, vp.i_size, 0x100 if vp.v_type == VCHR else 0, FS_BSIZE


def vn_stat(fp: File, td: Thread) -> tuple[int, int, int, int]:
    return vop_getattr(fp.f_vnode)


def vn_close(fp: File, td: Thread) -> int:
    return 0


@kfunc
def vn_seek(fp: File, offset: int, whence: int, td: Thread) -> tuple[int, int]:
    vp: Vnode = fp.f_vnode
    if vp.v_type == VCHR:
        return 0, 0  # devices ignore the offset
    base = {SEEK_SET: 0, SEEK_CUR: fp.f_offset, SEEK_END: vp.i_size}.get(whence)
    if base is None or base + offset < 0:
        return EINVAL, 0
    fp.f_offset = base + offset
    return 0, fp.f_offset


vnops = Fileops(vn_read, vn_write, vn_ioctl, vn_stat, vn_close, vn_seek)
