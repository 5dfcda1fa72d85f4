"""Socket system calls (sys/kern/uipc_syscalls.c, FreeBSD 11): socketpair, setsockopt, getsockopt."""

from __future__ import annotations

import struct

from sim.core.events import SockbufReserve, SocketpairCreated
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EAFNOSUPPORT, EBADF, EFAULT, EINVAL, ENOBUFS, ENOPROTOOPT, ENOTSOCK, EPROTONOSUPPORT
from sim.kern.kern_descrip import DTYPE_SOCKET, FNONBLOCK, FREAD, FWRITE, falloc, fget, kern_close
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread
from sim.kern.uipc_socket import Socket, sbreserve, socketops
from sim.kern.uipc_usrreq import uipc_attach, unp_connect2

PF_LOCAL = 1
SOCK_STREAM = 1
SOCK_CLOEXEC = 0x10000000
SOCK_NONBLOCK = 0x20000000
SOL_SOCKET = 0xFFFF
SO_SNDBUF = 0x1001
SO_RCVBUF = 0x1002
SO_SNDLOWAT = 0x1003
SO_RCVLOWAT = 0x1004


@syscall_handler
@kfunc
def sys_socketpair(td: Thread, domain: int, type_: int, protocol: int, rsv: int) -> int:
    from sim.kern.support import copyout

    flags = type_ & (SOCK_CLOEXEC | SOCK_NONBLOCK)
    type_ &= ~flags
    if domain != PF_LOCAL:
        return EAFNOSUPPORT
    if type_ != SOCK_STREAM or protocol != 0:
        return EPROTONOSUPPORT
    so1, so2 = socreate(type_), socreate(type_)
    unp_connect2(so1, so2)
    fflag = FREAD | FWRITE | (FNONBLOCK if flags & SOCK_NONBLOCK else 0)
    fds = []
    for so in (so1, so2):
        error, fd = falloc(td, DTYPE_SOCKET, fflag, socketops, so, bool(flags & SOCK_CLOEXEC))
        if error:
            for other in fds:
                kern_close(td, other)
            return error
        fds.append(fd)
    if copyout(struct.pack("<ii", *fds), rsv, 8) != 0:
        for fd in fds:
            kern_close(td, fd)
        return EFAULT
    pcpu.machine.emit("proc", "socketpair", SocketpairCreated(fds[0], fds[1]))
    return 0


def socreate(type_: int) -> Socket:
    so = Socket(type_)
    uipc_attach(so)
    return so


def _socket(td: Thread, s: int) -> tuple[int, Socket | None]:
    fp = fget(td, s)
    if fp is None:
        return EBADF, None
    if fp.f_type != DTYPE_SOCKET:
        return ENOTSOCK, None
    return 0, fp.f_data


@syscall_handler
@kfunc
def sys_setsockopt(td: Thread, s: int, level: int, name: int, val: int, valsize: int) -> int:
    from sim.kern.support import copyin

    error, so = _socket(td, s)
    if error:
        return error
    if level != SOL_SOCKET:
        return ENOPROTOOPT
    if valsize < 4:
        return EINVAL
    raw = bytearray(4)
    if copyin(val, raw, 4) != 0:
        return EFAULT
    optval = struct.unpack("<i", raw)[0]
    if name not in (SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT):
        return ENOPROTOOPT
    if optval < 1:
        return EINVAL  # values below 1 make no sense for any of these
    if name in (SO_SNDBUF, SO_RCVBUF):
        sb = so.so_snd if name == SO_SNDBUF else so.so_rcv
        if not sbreserve(sb, optval):
            return ENOBUFS  # more than kern.ipc.maxsockbuf allows
        pcpu.machine.emit("mem", "sbreserve", SockbufReserve(name, optval))
    else:
        sb = so.so_snd if name == SO_SNDLOWAT else so.so_rcv
        sb.sb_lowat = min(optval, sb.sb_hiwat)
    return 0


@syscall_handler
@kfunc
def sys_getsockopt(td: Thread, s: int, level: int, name: int, val: int, avalsize: int) -> int:
    from sim.kern.support import copyin, copyout

    error, so = _socket(td, s)
    if error:
        return error
    if level != SOL_SOCKET:
        return ENOPROTOOPT
    values = {
        SO_SNDBUF: so.so_snd.sb_hiwat,
        SO_RCVBUF: so.so_rcv.sb_hiwat,
        SO_SNDLOWAT: so.so_snd.sb_lowat,
        SO_RCVLOWAT: so.so_rcv.sb_lowat,
    }
    if name not in values:
        return ENOPROTOOPT
    raw = bytearray(4)
    if copyin(avalsize, raw, 4) != 0:
        return EFAULT
    if struct.unpack("<i", raw)[0] < 4:
        return EINVAL
    if copyout(struct.pack("<i", values[name]), val, 4) or copyout(struct.pack("<i", 4), avalsize, 4):
        return EFAULT
    return 0
