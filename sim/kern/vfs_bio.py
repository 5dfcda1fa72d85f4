"""The buffer cache (sys/kern/vfs_bio.c, FreeBSD 11) in front of a simulated disk.

A regular file's buffers are VMIO: their memory is the file's VM pages (vfs_vmio.py, the merged VM/buffer cache).

A write(2) to a file copies into cached buffers and returns: bdwrite() only marks a buffer dirty (a delayed
write) and puts its vnode on the syncer's worklist; bawrite() starts the disk write and returns without
waiting; bwrite() waits for it. The disk serves one request at a time and takes its profile's latency plus
transfer time; completion (biodone) comes later, as an interrupt would, when the CPU gets there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.core.events import BufDone, BufRef, DelayedWrite, DiskRequest
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.sched import PRIBIO, Callout, callout_reset
from sim.kern.vfs_subr import FILEDELAY, VREG, Vnode, vfs, vn_syncer_add_to_worklist
from sim.kern.vfs_vmio import (
    B_VMIO,
    allocbuf,
    vfs_bio_clrbuf,
    vfs_buf_test_cache,
    vfs_clean_pages_dirty_buf,
    vfs_vmio_iodone,
    vfs_vmio_release,
    vmio_block,
    vnode_create_vobject,
)
from sim.machine.physmem import PAGE_SIZE

# b_flags (sys/sys/buf.h)
B_ASYNC = 0x00000004  # start the I/O but do not wait for it
B_DIRECT = 0x00000008  # O_DIRECT: free the buffer's pages when it is released
B_DELWRI = 0x00000080  # a delayed write: dirty, not yet on its way to the disk
B_DONE = 0x00000200
B_CACHE = 0x00000020  # the buffer holds valid data
B_RELBUF = 0x00400000  # release the buffer (not just requeue it) when it is released
BIO_READ, BIO_WRITE = 1, 2


@dataclass(eq=False, repr=False)
class Buf:
    b_vp: Vnode
    b_lblkno: int
    b_data: bytearray | None  # None: an unmapped VMIO buffer, whose bytes are in b_pages
    b_flags: int = 0
    b_iocmd: int = 0
    b_busy: bool = False  # I/O in flight
    b_pages: list = field(default_factory=list)  # a VMIO buffer's pages: its vnode's, at the block's offset

    def __repr__(self) -> str:
        return f"buf {self.b_vp.v_path} block {self.b_lblkno}"

    def event_data(self) -> BufRef:
        """What an exit event records of this buf when a kernel function returns it (sim/core/kfunc.py)."""
        return BufRef(self.b_vp.v_path, self.b_lblkno)


@kfunc
def getblk(vp: Vnode, lbn: int, size: int) -> Buf:
    """Find the block's buffer in the cache, or make one on the file's pages (valid already if a mapping's faults
    brought them all in)."""
    machine = pcpu.machine
    machine.charge(machine.profile.getblk_ns)
    bp = vp.v_bufobj.get(lbn)
    if bp is None:
        assert vp.v_type == VREG, "only a regular file's blocks go through the buffer cache"
        vnode_create_vobject(vp)
        bp = vp.v_bufobj[lbn] = Buf(vp, lbn, None)
        allocbuf(bp, size)
        if vfs_buf_test_cache(bp):
            bp.b_flags |= B_CACHE
    return bp


@kfunc
def bread(vp: Vnode, lbn: int, size: int) -> Buf:
    """The block's buffer with valid data: from the cache, or read from the disk (the thread sleeps)."""
    bp = getblk(vp, lbn, size)
    if not bp.b_flags & B_CACHE:
        on_disk = vp.v_disk.get(lbn)
        if on_disk is None:
            vfs_bio_clrbuf(bp)  # a hole, or past what the disk holds: zeros, no I/O
            bp.b_flags |= B_CACHE
        else:
            bp.b_iocmd = BIO_READ
            bstrategy(bp)
            bufwait(bp, "biord")
    return bp


@kfunc
def bdwrite(bp: Buf) -> None:
    """Delayed write: mark the buffer dirty and let the syncer write it later."""
    vp = bp.b_vp
    bp.b_flags |= B_CACHE | B_DONE
    vfs_clean_pages_dirty_buf(bp)
    if not bp.b_flags & B_DELWRI:
        bp.b_flags |= B_DELWRI
        vp.bo_dirty += 1
        vfs().numdirtybuffers += 1
        if vp.bo_dirty == 1:
            vn_syncer_add_to_worklist(vp, FILEDELAY)
    pcpu.machine.emit("mem", "bdwrite", DelayedWrite(vp.v_path, bp.b_lblkno))


@kfunc
def bawrite(bp: Buf) -> None:
    """Asynchronous write: start the disk write now, do not wait for it."""
    bp.b_flags |= B_ASYNC
    bwrite(bp)


@kfunc
def bwrite(bp: Buf) -> None:
    vp = bp.b_vp
    bp.b_flags |= B_CACHE
    vfs_clean_pages_dirty_buf(bp)
    if bp.b_flags & B_DELWRI:
        bp.b_flags &= ~B_DELWRI
        vp.bo_dirty -= 1
        vfs().numdirtybuffers -= 1
    bp.b_iocmd = BIO_WRITE
    vp.bo_numoutput += 1
    bstrategy(bp)
    if not bp.b_flags & B_ASYNC:
        bufwait(bp, "biowr")


@kfunc
def bstrategy(bp: Buf) -> None:
    """Queue the transfer on the disk: it completes after the disk's latency and transfer time."""
    machine, v = pcpu.machine, vfs()
    start = max(machine.now, v.disk_busy_until)
    blocks = max(1, len(bp.b_pages) * PAGE_SIZE // 32768)
    done = start + machine.profile.disk_io_ns + blocks * machine.profile.disk_block_ns
    v.disk_busy_until = done
    bp.b_busy = True
    sdt_fire("io", ("start",))  # devstat_start_transaction_bio: SDT_PROBE2(io, , , start, bp, ds)
    machine.emit("mem", "g_io_request", DiskRequest(bp.b_iocmd, bp.b_vp.v_path, bp.b_lblkno, done))
    callout_reset(Callout(), done, bufdone, bp)


@kfunc
def bufdone(bp: Buf) -> None:
    """The disk interrupt: the transfer is complete (biodone)."""
    from sim.kern.kern_synch import wakeup

    vp, v = bp.b_vp, vfs()
    sdt_fire("io", ("done",))  # devstat_end_transaction_bio
    if bp.b_iocmd == BIO_WRITE:
        vp.v_disk[bp.b_lblkno] = vmio_block(bp)
        vp.bo_numoutput -= 1
        v.disk_writes += 1
        pcpu.machine.emit("mem", "bufdone", BufDone(vp.v_path, bp.b_lblkno))
        if vp.bo_numoutput == 0:
            wakeup(vp)  # bufobj_wwait: an fsync waiting for every write
    else:
        vfs_vmio_iodone(bp, vp.v_disk[bp.b_lblkno])
        v.disk_reads += 1
        bp.b_flags |= B_CACHE
    bp.b_flags |= B_DONE
    bp.b_flags &= ~B_ASYNC
    bp.b_busy = False
    wakeup(bp)
    if bp.b_flags & B_RELBUF:
        brelse(bp)  # an O_DIRECT write's buffer, given back once on the disk


@kfunc
def brelse(bp: Buf) -> None:
    """Release a buffer: with B_RELBUF, and once no write is in flight or pending, it leaves the cache (with
    B_DIRECT its pages are freed too), so the block must be read from the disk again."""
    bufobj = bp.b_vp.v_bufobj
    if bp.b_flags & B_RELBUF and not bp.b_busy and not bp.b_flags & B_DELWRI and bufobj.get(bp.b_lblkno) is bp:
        del bufobj[bp.b_lblkno]
        if bp.b_flags & B_VMIO:
            vfs_vmio_release(bp, bool(bp.b_flags & B_DIRECT))


def bufwait(bp: Buf, wmesg: str) -> None:
    from sim.kern.kern_synch import msleep

    while bp.b_busy:
        msleep(bp, PRIBIO, wmesg)
