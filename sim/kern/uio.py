"""struct uio and uiomove() (sys/sys/uio.h, sys/kern/subr_uio.c): how a read or write carries its user
buffer down to the object that fills or drains it.

A uio describes the user's side of a transfer (iovecs, a residual count, which way the data goes); the
object (a pipe, a socket, /dev/zero, a file's buffer) calls uiomove() with its kernel buffer, and uiomove()
moves the bytes with copyout() (reads) or copyin() (writes), which check the user address and fail with
EFAULT for a bad one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.core.kfunc import kfunc
from sim.machine.physmem import Fill

UIO_USERSPACE = 0  # enum uio_seg: the iovecs hold user addresses
UIO_SYSSPACE = 1  # ... kernel buffers
UIO_READ = 0  # enum uio_rw: data goes to the iovecs (read)
UIO_WRITE = 1  # data comes from the iovecs (write)


@dataclass
class Iovec:
    iov_base: int | bytearray | memoryview  # a user address, or a kernel buffer for UIO_SYSSPACE
    iov_len: int


@dataclass
class Uio:
    uio_iov: list[Iovec]
    uio_offset: int
    uio_resid: int
    uio_segflg: int = UIO_USERSPACE
    uio_rw: int = UIO_READ
    uio_td: object = None


def single_uio(base: int, length: int, offset: int, rw: int, td: object) -> Uio:
    """The uio of read(2)/write(2): one user buffer."""
    return Uio([Iovec(base, length)], offset, length, UIO_USERSPACE, rw, td)


@kfunc
def uiomove(kbuf: bytes | bytearray | memoryview | Fill, n: int, uio: Uio, kofs: int = 0, *, kcache: int | None = None
            ) -> int:  # fmt: skip
    """Move up to n bytes between kbuf[kofs:] and the uio, advancing it; 0 or EFAULT. kcache: where kbuf[0] sits
    for the cache model (sim/machine/memhier.py), when the caller's buffer is one the model names."""
    from sim.kern.support import copyin, copyout

    fill = kbuf if isinstance(kbuf, Fill) else None  # zero_region: a source of zeros, no host bytes
    view = None if fill is not None else kbuf if isinstance(kbuf, memoryview) else memoryview(kbuf)
    while n > 0 and uio.uio_resid > 0:
        iov = uio.uio_iov[0]
        cnt = min(iov.iov_len, n)
        if cnt == 0:
            uio.uio_iov.pop(0)
            continue
        chunk = Fill(fill.byte, cnt, fill.name) if fill is not None else view[kofs : kofs + cnt]
        if uio.uio_segflg == UIO_USERSPACE:
            at = None if kcache is None else kcache + kofs
            if uio.uio_rw == UIO_READ:
                error = copyout(chunk, iov.iov_base, cnt, kcache=at)
            else:
                error = copyin(iov.iov_base, chunk, cnt, kcache=at)
            if error:
                return error
            iov.iov_base += cnt
        else:
            target = memoryview(iov.iov_base)
            if uio.uio_rw == UIO_READ:
                target[:cnt] = chunk
            else:
                chunk[:] = target[:cnt]
            iov.iov_base = target[cnt:]
        iov.iov_len -= cnt
        uio.uio_resid -= cnt
        uio.uio_offset += cnt
        kofs += cnt
        n -= cnt
    return 0
