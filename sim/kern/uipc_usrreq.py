"""Local-domain (PF_LOCAL) stream sockets (sys/kern/uipc_usrreq.c, FreeBSD 11).

A connected pair sends straight into the peer's receive buffer (uipc_send); backpressure is the sender's
send buffer: once the peer's receive buffer holds the sender's SO_SNDBUF worth (net.local.stream.sendspace,
8 KiB by default), the sender's buffer is marked SB_STOP and its next send sleeps until the reader drains
some (uipc_rcvd clears SB_STOP and wakes it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.core.kfunc import kfunc
from sim.kern.proc import Thread
from sim.kern.uipc_socket import SB_STOP, SS_ISCONNECTED, Socket, sbappend, soisdisconnected, soreserve, sowakeup

PIPSIZ = 8192
UNPST_SENDSPACE = PIPSIZ  # net.local.stream.sendspace
UNPST_RECVSPACE = PIPSIZ  # net.local.stream.recvspace


@dataclass(eq=False)
class Unpcb:
    unp_socket: Socket
    unp_conn: Unpcb | None = None


def uipc_attach(so: Socket) -> None:
    soreserve(so, UNPST_SENDSPACE, UNPST_RECVSPACE)
    so.so_pcb = Unpcb(so)
    so.so_usrreqs = uipc_usrreqs


def unp_connect2(so: Socket, so2: Socket) -> None:
    unp, unp2 = so.so_pcb, so2.so_pcb
    unp.unp_conn, unp2.unp_conn = unp2, unp
    so.so_state |= SS_ISCONNECTED
    so2.so_state |= SS_ISCONNECTED


@kfunc
def uipc_send(so: Socket, chain: list, td: Thread) -> int:
    unp2 = so.so_pcb.unp_conn
    if unp2 is None:
        from sim.kern.errno import EPIPE

        return EPIPE
    so2 = unp2.unp_socket
    sbappend(so2.so_rcv, chain)
    sowakeup(so2.so_rcv)  # sorwakeup: a reader may be waiting
    snd = so.so_snd
    if so2.so_rcv.sb_cc >= snd.sb_hiwat or so2.so_rcv.sb_mbcnt >= snd.sb_mbmax:
        snd.sb_flags |= SB_STOP
    return 0


@kfunc
def uipc_rcvd(so: Socket) -> None:
    unp2 = so.so_pcb.unp_conn
    if unp2 is None:
        return
    snd2 = unp2.unp_socket.so_snd
    if so.so_rcv.sb_cc < snd2.sb_hiwat and so.so_rcv.sb_mbcnt < snd2.sb_mbmax:
        snd2.sb_flags &= ~SB_STOP
    sowakeup(snd2)  # sowwakeup: a writer may be waiting for room


@kfunc
def uipc_disconnect(so: Socket) -> None:
    unp = so.so_pcb
    unp2 = unp.unp_conn
    soisdisconnected(so)
    if unp2 is not None:
        unp2.unp_conn = None
        soisdisconnected(unp2.unp_socket)
    unp.unp_conn = None


@dataclass(frozen=True)
class Usrreqs:
    pru_send: object
    pru_rcvd: object
    pru_disconnect: object


uipc_usrreqs = Usrreqs(uipc_send, uipc_rcvd, uipc_disconnect)
