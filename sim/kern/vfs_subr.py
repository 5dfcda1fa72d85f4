"""Vnodes, the file namespace and the syncer (sys/kern/vfs_subr.c, FreeBSD 11), for a tiny file system.

The namespace is flat: a few directories (/, /bin, /dev, /tmp) and the files in them. Regular files keep
their data in 32 KiB blocks on a simulated disk, reached through the buffer cache (vfs_bio.py); /dev entries
are character devices; /bin holds the simulated programs that execve() can run.

The syncer (sched_sync) is the kernel process that writes delayed-write buffers back: a vnode that gets its
first dirty buffer is put on the syncer's worklist `filedelay` (30) seconds ahead; once a second the syncer
takes the next slot of its wheel and fsyncs the vnodes in it (MNT_LAZY), starting their disk writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.core.events import SyncVnode, VnodeRef
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.machine.physmem import PAGE_SIZE

# enum vtype (sys/sys/vnode.h)
VNON, VREG, VDIR, VBLK, VCHR, VLNK, VSOCK, VFIFO = range(8)

SYNCER_MAXDELAY = 32  # slots in the syncer's wheel, one per second
FILEDELAY = 30  # seconds before a file's delayed writes are pushed (kern.filedelay)
FS_BSIZE = 32768  # the file system's block size (newfs's default on FreeBSD 11)
DIRECTORIES = ("/", "/bin", "/dev", "/tmp", "/etc", "/var", "/var/tmp", "/usr", "/usr/bin")


@dataclass(eq=False, repr=False)
class Vnode:
    v_type: int
    v_path: str
    v_mode: int = 0o644
    v_rdev: object = None  # the device's cdevsw, for VCHR
    v_image: object = None  # an executable's ELF image: the segments exec maps (sim/kern/imgact_elf.py)
    v_main: object = None  # an executable's code: the Python function its entry point runs (sim/user)
    i_size: int = 0  # the file's length (the inode's i_size)
    v_disk: dict[int, bytes] = field(default_factory=dict)  # logical block -> what the disk holds
    v_bufobj: dict = field(default_factory=dict)  # logical block -> buffer in the buffer cache
    bo_dirty: int = 0  # dirty buffers of this vnode
    bo_numoutput: int = 0  # writes in flight
    v_onworklist: bool = False  # on the syncer's worklist (VI_ONWORKLST)
    v_clen: int = 0  # full blocks written in sequence, for cluster_write
    v_ino: int = 0  # the inode number stat(2) reports
    v_object: object = None  # the file's VM object (vnode_create_vobject): its cached pages, buffers' and mappings'

    def __repr__(self) -> str:
        return f"vnode {self.v_path}"

    def vm_getpage(self, pindex: int) -> bytes:
        """VOP_GETPAGES for the vnode pager (sim/vm/vm_pager.py): the file's bytes for one page, from the disk. The
        pager is asked only for a page not resident in the file's object, and a buffer's pages are (vfs_vmio.py)."""
        lbn, within = divmod(pindex * PAGE_SIZE, FS_BSIZE)
        return bytes(self.v_disk.get(lbn, b"")[within : within + PAGE_SIZE])

    def event_data(self) -> VnodeRef:
        """What an exit event records of this vnode when a kernel function returns it (sim/core/kfunc.py)."""
        return VnodeRef(self.v_path)


@dataclass
class Vfs:
    """What FreeBSD keeps in globals: the namespace, the syncer's wheel, the disk queue."""

    names: dict[str, Vnode] = field(default_factory=dict)
    syncer_workitem_pending: list[list[Vnode]] = field(default_factory=lambda: [[] for _ in range(SYNCER_MAXDELAY)])
    syncer_delayno: int = 0
    sync_wakeup: object = field(default_factory=object)  # the syncer sleeps on this between rounds
    syncer_td: object = None
    disk_busy_until: int = 0  # the disk serves one request at a time
    numdirtybuffers: int = 0
    disk_writes: int = 0
    disk_reads: int = 0
    next_ino: int = 2  # UFS_ROOTINO


def new_vnode(v_type: int, path: str, mode: int, **fields) -> Vnode:
    v = vfs()
    vp = Vnode(v_type, path, mode, v_ino=v.next_ino, **fields)
    v.next_ino += 1
    return vp


def vfs(kernel=None) -> Vfs:
    kernel = kernel or pcpu.kernel
    if kernel.vfs is None:
        kernel.vfs = vfs_mountroot()
    return kernel.vfs


def vfs_mountroot() -> Vfs:
    from sim.kern.null import null_cdevsw, zero_cdevsw
    from sim.kern.tty import console_cdevsw

    v = Vfs()
    nodes = [(VDIR, path, 0o755, None) for path in DIRECTORIES]
    nodes += [(VCHR, f"/dev/{dev.d_name}", 0o666, dev) for dev in (null_cdevsw, zero_cdevsw, console_cdevsw)]
    for v_type, path, mode, dev in nodes:
        v.names[path] = Vnode(v_type, path, mode, v_rdev=dev, v_ino=v.next_ino)
        v.next_ino += 1
    v.names["/dev/tty"] = v.names["/dev/console"]
    return v


def install_program(path: str, image: object, main: object = None) -> Vnode:
    """Put an executable in the namespace (as installworld would)."""
    vp = vfs().names[path] = new_vnode(VREG, path, 0o755, v_image=image, v_main=main)
    return vp


def parent_dir(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


# -- the syncer --------------------------------------------------------------------------------------------------


def vn_syncer_add_to_worklist(vp: Vnode, delay: int) -> None:
    """Arrange for the syncer to fsync this vnode `delay` seconds from now."""
    from sim.kern.kern_synch import wakeup

    v = vfs()
    if vp.v_onworklist:
        return
    slot = (v.syncer_delayno + min(delay, SYNCER_MAXDELAY - 1)) % SYNCER_MAXDELAY
    v.syncer_workitem_pending[slot].append(vp)
    vp.v_onworklist = True
    if v.syncer_td is None:
        start_syncer()
    else:
        wakeup(v.sync_wakeup)  # an idle syncer starts its once-a-second rounds again


def start_syncer() -> None:
    """The syncer kernel process. FreeBSD starts it at boot; here it starts when the first file is dirtied,
    so that runs without files have no extra process."""
    from sim.kern.sched import PPAUSE, kproc_create

    v = vfs()
    v.syncer_td = kproc_create("syncer", lambda: _kthread_start(v.syncer_td, sched_sync), PPAUSE)


def _kthread_start(td, main) -> None:
    from sim.kern.kern_fork import fork_trampoline

    fork_trampoline(td, lambda arg, frame: main(), None)


def _worklist_empty(v: Vfs) -> bool:
    return not any(v.syncer_workitem_pending)


def sched_sync() -> None:
    """The syncer's main loop: push one slot of the wheel a second; sleep without a timeout when idle."""
    from sim.kern.kern_synch import msleep

    v = vfs()
    while True:
        if _worklist_empty(v):
            msleep(v.sync_wakeup, 0, "syncer")  # nothing to write: wait to be given work
            continue
        syncer_round(v)
        msleep(v.sync_wakeup, 0, "syncer", 1_000_000_000)  # cv_timedwait(..., hz)


@kfunc
def syncer_round(v: Vfs) -> None:
    from sim.kern.vfs_vnops import ffs_fsync

    slot = v.syncer_workitem_pending[v.syncer_delayno]
    v.syncer_delayno = (v.syncer_delayno + 1) % SYNCER_MAXDELAY
    while slot:
        vp = slot.pop(0)
        vp.v_onworklist = False
        pcpu.machine.emit("proc", "sync_vnode", SyncVnode(vp.v_path, vp.bo_dirty))
        ffs_fsync(vp, wait=False)
