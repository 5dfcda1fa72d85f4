"""/dev/null and /dev/zero (sys/dev/null/null.c, FreeBSD 11).

zero_read() fills the reader's buffer from zero_region, ZERO_REGION_SIZE (2 MiB on amd64) of zeros that the
kernel maps read-only, in MIN(resid, ZERO_REGION_SIZE) chunks: a 10 MiB read is five uiomove() calls, five
copyouts. The copyouts are where the reader's untouched pages first fault in (demand-zero, in kernel mode),
so the kernel zeroes pages only to copy zeros into them. null_write() just consumes the uio.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.core.kfunc import kfunc
from sim.kern.errno import ENOIOCTL
from sim.kern.kern_descrip import FIONBIO
from sim.kern.proc import Thread
from sim.kern.support import ZERO_REGION_SIZE, zero_region
from sim.kern.uio import UIO_READ, Uio, uiomove


@dataclass(frozen=True)
class Cdevsw:
    """struct cdevsw: a character device's entry points."""

    d_name: str
    d_read: object
    d_write: object
    d_ioctl: object
    d_flags: int = 0


D_TTY = 0x0004  # sys/sys/conf.h d_flags: the device types FIODTYPE reports (D_TYPEMASK)
D_MEM = 0x0008
D_TYPEMASK = 0xFFFF
D_MMAP_ANON = 0x00100000  # mmap of the device gives anonymous memory (/dev/zero)


@kfunc
def zero_read(dev: Cdevsw, uio: Uio, flags: int) -> int:
    assert uio.uio_rw == UIO_READ
    error = 0
    while uio.uio_resid > 0 and error == 0:
        error = uiomove(zero_region, min(uio.uio_resid, ZERO_REGION_SIZE), uio)
    return error


@kfunc
def null_write(dev: Cdevsw, uio: Uio, flags: int) -> int:
    uio.uio_resid = 0
    return 0


def nullop_read(dev: Cdevsw, uio: Uio, flags: int) -> int:
    return 0  # /dev/null reads as end-of-file


def null_ioctl(dev: Cdevsw, com: int, td: Thread) -> tuple[int, int | None]:
    return (0, None) if com == FIONBIO else (ENOIOCTL, None)


null_cdevsw = Cdevsw("null", nullop_read, null_write, null_ioctl)
zero_cdevsw = Cdevsw("zero", zero_read, null_write, null_ioctl, D_MMAP_ANON)
