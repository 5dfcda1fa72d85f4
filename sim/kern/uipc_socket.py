"""The socket layer (sys/kern/uipc_socket.c, uipc_sockbuf.c and the socket fileops of sys_socket.c, FreeBSD 11).

A socket has a send and a receive buffer (sockbuf). sosend() copies the user's data into mbufs (copyin) and
hands them to the protocol; soreceive() copies queued mbufs out to the user (copyout). A sender with no
room sleeps on its send buffer ("sbwait"), a receiver with nothing queued on its receive buffer; both sleeps
are interruptible. SO_SNDBUF/SO_RCVBUF set a buffer's high-water mark, within kern.ipc.maxsockbuf.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EAGAIN, ENOIOCTL, ENOTCONN, EPIPE
from sim.kern.kern_descrip import FIONBIO, FIONREAD, FNONBLOCK, S_IFSOCK, File, Fileops
from sim.kern.kern_synch import PCATCH, msleep, wakeup
from sim.kern.proc import Thread
from sim.kern.sched import PSOCK
from sim.kern.uio import Uio, uiomove

MSIZE = 256  # sys/sys/param.h: an mbuf
MCLBYTES = 2048  # a standard cluster
MJUMPAGESIZE = 4096  # a page-sized cluster: what m_getm2 uses for large copies
MINCLSIZE = 169  # MHLEN + 1: smaller data stays in the mbuf itself
SB_MAX = 2 * 1024 * 1024  # kern.ipc.maxsockbuf
SB_MAX_ADJ = SB_MAX * MCLBYTES // (MSIZE + MCLBYTES)  # the largest SO_SNDBUF/SO_RCVBUF sbreserve allows
SB_EFFICIENCY = 8  # sb_mbmax = min(hiwat * 8, sb_max)

SB_WAIT = 0x04  # someone sleeps on this sockbuf
SB_STOP = 0x1000  # backpressure: the unix-domain peer's receive buffer is full
SBS_CANTSENDMORE = 0x0010
SBS_CANTRCVMORE = 0x0020
SS_ISCONNECTED = 0x0002


@dataclass(eq=False)
class Sockbuf:
    sb_hiwat: int = 0
    sb_lowat: int = 0
    sb_mbmax: int = 0
    sb_cc: int = 0  # bytes queued
    sb_mbcnt: int = 0  # mbuf storage those bytes use
    sb_flags: int = 0
    sb_state: int = 0
    sb_mb: deque = field(default_factory=deque)  # the mbuf chain: [bytearray data, offset, storage, cache address]


@dataclass(eq=False, repr=False)
class Socket:
    so_type: int
    so_snd: Sockbuf = field(default_factory=Sockbuf)
    so_rcv: Sockbuf = field(default_factory=Sockbuf)
    so_state: int = 0
    so_pcb: object = None  # the protocol's control block (struct unpcb)
    so_usrreqs: object = None  # pr_usrreqs: the protocol's entry points

    def __repr__(self) -> str:
        return f"socket ({self.so_rcv.sb_cc} bytes to read)"


def sbreserve(sb: Sockbuf, cc: int) -> bool:
    if cc > SB_MAX_ADJ:
        return False
    sb.sb_hiwat = cc
    sb.sb_mbmax = min(cc * SB_EFFICIENCY, SB_MAX)
    if sb.sb_lowat > sb.sb_hiwat:
        sb.sb_lowat = sb.sb_hiwat
    return True


def soreserve(so: Socket, sndcc: int, rcvcc: int) -> bool:
    if not (sbreserve(so.so_snd, sndcc) and sbreserve(so.so_rcv, rcvcc)):
        return False
    so.so_rcv.sb_lowat = so.so_rcv.sb_lowat or 1
    so.so_snd.sb_lowat = min(so.so_snd.sb_lowat or MCLBYTES, so.so_snd.sb_hiwat)
    return True


def sbspace(sb: Sockbuf) -> int:
    if sb.sb_flags & SB_STOP:
        return 0
    return min(sb.sb_hiwat - sb.sb_cc, sb.sb_mbmax - sb.sb_mbcnt)


def sbwait(sb: Sockbuf) -> int:
    sb.sb_flags |= SB_WAIT
    return msleep(sb, PSOCK | PCATCH, "sbwait")


def sowakeup(sb: Sockbuf) -> None:
    from sim.kern.sys_generic import selwakeup

    selwakeup()
    if sb.sb_flags & SB_WAIT:
        sb.sb_flags &= ~SB_WAIT
        wakeup(sb)


def sbappend(sb: Sockbuf, chain: list) -> None:
    for m in chain:
        sb.sb_mb.append(m)
        sb.sb_cc += len(m[0]) - m[1]
        sb.sb_mbcnt += m[2]


def _charge(cost: str, times: int = 1) -> None:
    machine = pcpu.machine
    machine.charge(getattr(machine.profile, cost) * times)


def m_uiotombuf(uio: Uio, space: int) -> tuple[int, list]:
    """Copy up to `space` bytes of the user's data into a chain of page-sized clusters."""
    total = min(space, uio.uio_resid)
    chain = []
    while total > 0:
        size = min(total, MJUMPAGESIZE)
        data = bytearray(size)
        storage = MSIZE + (MJUMPAGESIZE if size > MCLBYTES else MCLBYTES if size >= MINCLSIZE else 0)
        kva = pcpu.machine.caches.kernel_buffer(storage)  # from the zone's cache: the last cluster freed
        error = uiomove(data, size, uio, kcache=kva)
        if error:
            pcpu.machine.caches.free_kernel_buffer(kva, storage)
            return error, chain
        chain.append([data, 0, storage, kva])
        total -= size
    _charge("mbuf_ns", len(chain))
    return 0, chain


@kfunc
def sosend(so: Socket, uio: Uio, td: Thread, nonblock: bool) -> int:
    """The protocol's pru_sosend: sosend_generic, for a PF_LOCAL stream socket."""
    return sosend_generic(so, uio, td, nonblock)


@kfunc
def sosend_generic(so: Socket, uio: Uio, td: Thread, nonblock: bool) -> int:
    """For a stream socket: copy in as much as there is room for, hand it on, repeat."""
    td.td_proc.p_ru["ru_msgsnd"] += 1  # td->td_ru.ru_msgsnd++
    snd = so.so_snd
    _charge("socket_op_ns")
    while uio.uio_resid:
        if snd.sb_state & SBS_CANTSENDMORE:
            return EPIPE
        if not so.so_state & SS_ISCONNECTED:
            return ENOTCONN
        space = sbspace(snd)
        if space < uio.uio_resid and space < snd.sb_lowat:
            if nonblock:
                return EAGAIN
            error = sbwait(snd)
            if error:
                return error
            _charge("socket_op_ns")
            continue
        while uio.uio_resid and space > 0:
            before = uio.uio_resid
            error, chain = m_uiotombuf(uio, space)
            if error:
                return error
            space -= before - uio.uio_resid
            error = so.so_usrreqs.pru_send(so, chain, td)
            if error:
                return error
    return 0


@kfunc
def soreceive(so: Socket, uio: Uio, td: Thread, nonblock: bool) -> int:
    """The protocol's pru_soreceive: soreceive_generic, for a PF_LOCAL stream socket."""
    return soreceive_generic(so, uio, td, nonblock)


@kfunc
def soreceive_generic(so: Socket, uio: Uio, td: Thread, nonblock: bool) -> int:
    """For a stream socket: wait for something, then copy out what is there."""
    rcv = so.so_rcv
    _charge("socket_op_ns")
    while not rcv.sb_mb:
        if rcv.sb_state & SBS_CANTRCVMORE or uio.uio_resid == 0:
            return 0  # end of file: the peer has gone
        if not so.so_state & SS_ISCONNECTED:
            return ENOTCONN
        if nonblock:
            return EAGAIN
        error = sbwait(rcv)
        if error:
            return error
        _charge("socket_op_ns")
    td.td_proc.p_ru["ru_msgrcv"] += 1  # soreceive_generic's dontblock: uio_td->td_ru.ru_msgrcv++
    freed = 0
    while rcv.sb_mb and uio.uio_resid > 0:
        m = rcv.sb_mb[0]
        data, moff, storage, kva = m
        length = min(uio.uio_resid, len(data) - moff)
        error = uiomove(data, length, uio, moff, kcache=kva)
        if error:
            return error
        rcv.sb_cc -= length
        if moff + length == len(data):
            rcv.sb_mb.popleft()
            rcv.sb_mbcnt -= storage
            pcpu.machine.caches.free_kernel_buffer(kva, storage)
            freed += 1
        else:
            m[1] = moff + length
    _charge("mbuf_ns", freed)
    so.so_usrreqs.pru_rcvd(so)
    return 0


@kfunc
def soo_read(fp: File, uio: Uio, td: Thread) -> int:
    return soreceive(fp.f_data, uio, td, bool(fp.f_flag & FNONBLOCK))


@kfunc
def soo_write(fp: File, uio: Uio, td: Thread) -> int:
    from sim.kern.kern_sig import SIGPIPE, tdsignal

    error = sosend(fp.f_data, uio, td, bool(fp.f_flag & FNONBLOCK))
    if error == EPIPE:
        tdsignal(td, SIGPIPE)  # the socket layer sends SIGPIPE itself (SO_NOSIGPIPE is not modelled)
    return error


def soo_ioctl(fp: File, com: int, td: Thread) -> tuple[int, int | None]:
    if com == FIONREAD:
        return 0, fp.f_data.so_rcv.sb_cc
    if com == FIONBIO:
        return 0, None
    return ENOIOCTL, None


def soo_poll(fp: File, events: int, td: Thread) -> int:
    """sopoll_generic: readable with data (or at EOF), writable with room for sb_lowat (or when closed)."""
    from sim.kern.sys_generic import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

    so: Socket = fp.f_data
    revents = 0
    if so.so_rcv.sb_cc >= so.so_rcv.sb_lowat or so.so_rcv.sb_state & SBS_CANTRCVMORE:
        revents |= events & (POLLIN | POLLRDNORM)
    if sbspace(so.so_snd) >= so.so_snd.sb_lowat or so.so_snd.sb_state & SBS_CANTSENDMORE:
        revents |= events & (POLLOUT | POLLWRNORM)
    return revents


def soo_stat(fp: File, td: Thread) -> tuple[int, int, int, int]:
    so = fp.f_data
    return S_IFSOCK | 0o777, so.so_rcv.sb_cc, 0, so.so_snd.sb_hiwat


@kfunc
def soo_close(fp: File, td: Thread) -> int:
    so = fp.f_data
    so.so_usrreqs.pru_disconnect(so)
    return 0


def soisdisconnected(so: Socket) -> None:
    so.so_state &= ~SS_ISCONNECTED
    so.so_rcv.sb_state |= SBS_CANTRCVMORE
    sowakeup(so.so_rcv)
    so.so_snd.sb_state |= SBS_CANTSENDMORE
    sowakeup(so.so_snd)


socketops = Fileops(soo_read, soo_write, soo_ioctl, soo_stat, soo_close, fo_poll=soo_poll)
