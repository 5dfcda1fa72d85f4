"""Asynchronous I/O (sys/kern/vfs_aio.c, FreeBSD 11): aio_write, aio_error, aio_return.

aio_write() only queues a job and returns: the caller must not touch its buffer until the job is done
("shared semantics", the lecture). An AIO daemon, a kernel process, takes the job, borrows the requesting
process's address space (so copyin reaches the user's buffer), and does the write through fo_write like
write(2) would. aio_error() says EINPROGRESS until then; aio_return() collects the byte count, once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from sim.core.events import AioDone, AioQueued
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EBADF, EFAULT, EINPROGRESS, EINVAL
from sim.kern.kern_descrip import FWRITE, fget
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Proc, Thread
from sim.kern.uio import UIO_WRITE, Uio, single_uio

# struct aiocb (sys/sys/aio.h, amd64): aio_fildes, aio_offset, aio_buf, aio_nbytes, spares, aio_lio_opcode,
# aio_reqprio, _aiocb_private (status, error, kernelinfo), aio_sigevent
AIOCB = struct.Struct("<i4xqQQ8x8xiiqqQ")
AIOCB_SIZE = AIOCB.size + 80  # and the struct sigevent
_STATUS_OFFSET = 56  # _aiocb_private.status; .error follows at 64 (the two are written together)
LIO_WRITE = 1


@dataclass(eq=False, repr=False)
class Kaiocb:
    """struct kaiocb: one job."""

    userproc: Proc
    ujob: int  # the user's aiocb: how aio_error/aio_return find the job
    fd: int
    offset: int
    buf: int
    nbytes: int
    cred: object = None  # job->cred: the requester's credential, held when the job is queued
    finished: bool = False
    status: int = 0
    error: int = 0

    def __repr__(self) -> str:
        return f"aio job for pid {self.userproc.p_pid}, fd {self.fd}"


@dataclass
class AioState:
    jobs: list[Kaiocb] = field(default_factory=list)  # aio_jobs: queued, not yet taken by a daemon
    daemon: Thread | None = None
    done_by_proc: dict = field(default_factory=dict)  # proc -> its jobs (kaio_all)
    newjob: object = field(default_factory=object)  # idle daemons sleep on this (aio_kick wakes them)


def _aio() -> AioState:
    kernel = pcpu.kernel
    if kernel.aio is None:
        kernel.aio = AioState()
    return kernel.aio


@syscall_handler
@kfunc
def sys_aio_write(td: Thread, aiocbp: int) -> int:
    return aio_aqueue(td, aiocbp, LIO_WRITE)


@kfunc
def aio_aqueue(td: Thread, ujob: int, opcode: int) -> int:
    from sim.kern.kern_synch import wakeup
    from sim.kern.support import copyin, copyout

    machine = pcpu.machine
    machine.charge(machine.profile.aio_job_ns)
    raw = bytearray(AIOCB.size)
    if copyin(ujob, raw, AIOCB.size) != 0:
        return EFAULT
    fd, offset, buf, nbytes, _, _, _, _, _ = AIOCB.unpack(raw)
    fp = fget(td, fd)
    if fp is None or not fp.f_flag & FWRITE:
        _store(ujob, -1, EBADF)
        return EBADF
    if offset < 0:
        _store(ujob, -1, EINVAL)
        return EINVAL
    # The user's copy says "in progress" from now on.
    if copyout(struct.pack("<qq", 0, EINPROGRESS), ujob + _STATUS_OFFSET, 16) != 0:
        return EFAULT
    job = Kaiocb(td.td_proc, ujob, fd, offset, buf, nbytes, cred=td.td_ucred)  # crhold(td->td_ucred)
    state = _aio()
    state.jobs.append(job)
    state.done_by_proc.setdefault(td.td_proc, []).append(job)
    machine.emit("proc", "aio_queue", AioQueued(fd, nbytes, offset))
    if state.daemon is None:
        aio_newproc(state)
    wakeup(state.newjob)  # aio_kick: a daemon takes it
    return 0


def _store(ujob: int, status: int, error: int) -> None:
    from sim.kern.support import copyout

    copyout(struct.pack("<qq", status, error), ujob + _STATUS_OFFSET, 16)


def aio_newproc(state: AioState) -> None:
    from sim.kern.sched import PRIBIO, kproc_create
    from sim.kern.vfs_subr import _kthread_start

    state.daemon = kproc_create("aiod1", lambda: _kthread_start(state.daemon, aio_daemon), PRIBIO)


def aio_daemon() -> None:
    """Take jobs and run them, in the requesting process's address space."""
    from sim.kern.kern_synch import msleep

    state = _aio()
    while True:
        while not state.jobs:
            msleep(state.newjob, 0, "aiordy")
        job = state.jobs.pop(0)
        aio_process_rw(job)


@kfunc
def aio_process_rw(job: Kaiocb) -> None:
    from sim.kern.kern_synch import wakeup
    from sim.kern.sys_generic import dofilewrite

    td = pcpu.curthread
    daemon_proc = td.td_proc
    vmspace_switch_aio(td, getattr(job.userproc, "p_vmspace", None))
    saved_fd = daemon_proc.p_fd
    daemon_proc.p_fd = job.userproc.p_fd  # the job's file, from the requester's table
    # The work is authorised as the requester's, not the daemon's: the credential cached with the job.
    saved_cred, td.td_ucred = td.td_ucred, job.cred
    pcpu.machine.emit("hook", "td_ucred = job->cred")
    fp = fget(td, job.fd)
    error, count = EBADF, 0
    if fp is not None:
        uio: Uio = single_uio(job.buf, job.nbytes, job.offset, UIO_WRITE, td)
        saved_offset = fp.f_offset
        fp.f_offset = job.offset  # aio_write writes at aio_offset and leaves the file offset alone
        error = dofilewrite(td, fp, uio)
        fp.f_offset = saved_offset
        count = td.td_retval[0]
    daemon_proc.p_fd = saved_fd
    td.td_ucred = saved_cred
    pcpu.machine.emit("hook", "td_ucred = td_savedcred")
    job.finished, job.status, job.error = True, count, error
    machine = pcpu.machine
    machine.charge(machine.profile.aio_job_ns)
    machine.emit("proc", "aio_complete", AioDone(job.userproc.p_pid, count, error))
    wakeup(job)


def vmspace_switch_aio(td: Thread, vmspace) -> None:
    """The daemon runs on the requester's page tables while it works for it."""
    if vmspace is None:
        return
    from sim.vm.pmap import pmap_activate

    td.td_proc.p_vmspace = vmspace
    pmap_activate(vmspace.vm_pmap)


def _find(td: Thread, ujob: int) -> Kaiocb | None:
    for job in _aio().done_by_proc.get(td.td_proc, []):
        if job.ujob == ujob:
            return job
    return None


@syscall_handler
@kfunc
def sys_aio_error(td: Thread, aiocbp: int) -> int:
    job = _find(td, aiocbp)
    if job is None:
        td.set_retval(0, EINVAL)
    else:
        td.set_retval(0, job.error if job.finished else EINPROGRESS)
    return 0


@syscall_handler
@kfunc
def sys_aio_return(td: Thread, aiocbp: int) -> int:
    job = _find(td, aiocbp)
    if job is None or not job.finished:
        return EINVAL
    _aio().done_by_proc[td.td_proc].remove(job)
    _store(aiocbp, job.status, job.error)
    if job.error:
        return job.error
    td.set_retval(0, job.status)
    return 0
