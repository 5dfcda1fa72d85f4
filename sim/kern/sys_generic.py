"""read(2), write(2) and ioctl(2) (sys/kern/sys_generic.c, FreeBSD 11).

The generic half of I/O: find the open file, describe the user buffer as a uio, and hand it to the object
through fo_read/fo_write. A transfer that a signal interrupts after moving some bytes returns that count
rather than the error (dofileread/dofilewrite), so EINTR and ERESTART only happen when nothing moved.
"""

from __future__ import annotations

import struct

from sim.core.kfunc import kfunc
from sim.kern.errno import EBADF, EFAULT, EINTR, EINVAL, ENOIOCTL, ENOTTY, EPIPE, ERESTART
from sim.kern.kern_descrip import (
    DTYPE_SOCKET,
    FIONBIO,
    FNONBLOCK,
    FREAD,
    FWRITE,
    File,
    fget,
)
from sim.kern.kern_synch import EWOULDBLOCK
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread
from sim.kern.uio import UIO_READ, UIO_WRITE, Uio, single_uio

SSIZE_MAX = (1 << 63) - 1  # IOSIZE_MAX on amd64 (iosize_max_clamp is off)


@syscall_handler
@kfunc
def sys_read(td: Thread, fd: int, buf: int, nbyte: int) -> int:
    if nbyte > SSIZE_MAX:
        return EINVAL
    fp = fget(td, fd)
    if fp is None or not fp.f_flag & FREAD:
        return EBADF
    return dofileread(td, fp, single_uio(buf, nbyte, fp.f_offset, UIO_READ, td))


@syscall_handler
@kfunc
def sys_write(td: Thread, fd: int, buf: int, nbyte: int) -> int:
    if nbyte > SSIZE_MAX:
        return EINVAL
    fp = fget(td, fd)
    if fp is None or not fp.f_flag & FWRITE:
        return EBADF
    return dofilewrite(td, fp, single_uio(buf, nbyte, fp.f_offset, UIO_WRITE, td))


@kfunc
def dofileread(td: Thread, fp: File, auio: Uio) -> int:
    if auio.uio_resid == 0:
        td.set_retval(0, 0)  # zero-length reads finish here
        return 0
    cnt = auio.uio_resid
    error = fp.f_ops.fo_read(fp, auio, td)
    if error and auio.uio_resid != cnt and error in (ERESTART, EINTR, EWOULDBLOCK):
        error = 0  # some bytes moved before the interruption: report them
    td.set_retval(0, cnt - auio.uio_resid)
    return error


@kfunc
def dofilewrite(td: Thread, fp: File, auio: Uio) -> int:
    from sim.kern.kern_sig import SIGPIPE, tdsignal

    cnt = auio.uio_resid
    error = fp.f_ops.fo_write(fp, auio, td)
    if error:
        if auio.uio_resid != cnt and error in (ERESTART, EINTR, EWOULDBLOCK):
            error = 0
        if fp.f_type != DTYPE_SOCKET and error == EPIPE:
            tdsignal(td, SIGPIPE)  # the socket layer sends its own SIGPIPE
    td.set_retval(0, cnt - auio.uio_resid)
    return error


@syscall_handler
@kfunc
def sys_ioctl(td: Thread, fd: int, com: int, data: int) -> int:
    """FIONBIO is handled here for every file; the rest goes to the object (fo_ioctl)."""
    from sim.kern.support import copyin, copyout

    fp = fget(td, fd)
    if fp is None:
        return EBADF
    if com == FIONBIO:
        raw = bytearray(4)
        if copyin(data, raw, 4) != 0:
            return EFAULT
        on = struct.unpack("<i", raw)[0]
        fp.f_flag = fp.f_flag | FNONBLOCK if on else fp.f_flag & ~FNONBLOCK
    error, value = fp.f_ops.fo_ioctl(fp, com, td)
    if error == ENOIOCTL:
        return ENOTTY
    if error == 0 and value is not None and copyout(struct.pack("<i", value), data, 4) != 0:
        return EFAULT
    return error


# poll events (sys/sys/poll.h)
POLLIN = 0x0001
POLLOUT = 0x0004
POLLRDNORM = 0x0040
POLLWRNORM = POLLOUT
SELWAIT = "selwait"  # the wait channel of every thread in select(); selwakeup() wakes them all to rescan
NFDBITS = 64


def selwakeup() -> None:
    """Something became readable or writable: every selecting thread rescans (seltdwait's wakeup)."""
    from sim.kern.kern_synch import wakeup

    wakeup(SELWAIT)


@syscall_handler
@kfunc
def sys_select(td: Thread, nd: int, in_: int, ou: int, ex: int, tv: int) -> int:
    from sim.kern.kern_synch import PCATCH, msleep
    from sim.kern.sched import PSOCK
    from sim.kern.support import copyin, copyout

    if nd < 0:
        return EINVAL
    nd = min(nd, len(td.td_proc.p_fd.fd_ofiles))
    size = (nd + NFDBITS - 1) // NFDBITS * 8  # howmany(nd, NFDBITS) words
    wanted = []
    for which, uaddr in ((POLLIN | POLLRDNORM, in_), (POLLOUT | POLLWRNORM, ou), (0, ex)):
        bits = 0
        if uaddr and size:
            raw = bytearray(size)
            if copyin(uaddr, raw, size) != 0:
                return EFAULT
            bits = int.from_bytes(raw, "little")
        wanted.append((which, uaddr, bits))
    timo = None
    if tv:
        raw = bytearray(16)
        if copyin(tv, raw, 16) != 0:
            return EFAULT
        sec, usec = struct.unpack("<qq", raw)
        if sec < 0 or not 0 <= usec < 10**6:
            return EINVAL
        timo = sec * 10**9 + usec * 1000
    error = 0
    while True:
        error, count, results = selscan(td, nd, wanted)
        if error or count or timo == 0:
            break
        error = msleep(SELWAIT, PSOCK | PCATCH, "select", timo or 0)
        if error:
            break
    if error == ERESTART:
        error = EINTR  # select is not restarted after a signal
    if error == EWOULDBLOCK:
        error, count, results = 0, 0, [0, 0, 0]
    if error:
        return error
    for (_, uaddr, _), bits in zip(wanted, results, strict=True):
        if uaddr and size and copyout(bits.to_bytes(size, "little"), uaddr, size) != 0:
            return EFAULT
    td.set_retval(0, count)
    return 0


def selscan(td: Thread, nd: int, wanted: list) -> tuple[int, int, list[int]]:
    """Which of the asked-about descriptors are ready: (error, how many bits set, the three result sets)."""
    results, count = [], 0
    for events, _, bits in wanted:
        ready = 0
        for fd in range(nd):
            if not bits >> fd & 1:
                continue
            fp = fget(td, fd)
            if fp is None:
                return EBADF, 0, []
            poll = fp.f_ops.fo_poll
            if events and (poll is None or poll(fp, events, td)):
                ready |= 1 << fd
                count += 1
        results.append(ready)
    return 0, count, results
