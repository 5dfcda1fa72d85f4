"""Pipes (sys/kern/sys_pipe.c, FreeBSD 11).

Each end of a pipe has a circular kernel buffer; write(2) on one end copies into the other end's buffer
(copyin), read(2) copies out of its own (copyout). A buffer starts at PIPE_SIZE (16 KiB) and a writer with
more to say grows its peer's to BIG_PIPE_SIZE (64 KiB). A reader of an empty pipe sleeps on the pipe
("piperd") until a writer wakes it; a writer facing a full buffer sleeps ("pipewr") until a reader drains
some. Both sleeps are interruptible (PCATCH): a caught signal ends them with EINTR or ERESTART.

A blocking write of PIPE_MINDIRECT (8 KiB) or more from user memory takes the direct path instead
(PIPE_DIRECTW): the writer holds the pages of its own buffer and sleeps ("pipdwt"); the reader copies straight
out of those pages into its buffer (uiomove_fromphys). One copy instead of two: the VM-optimised IPC the
lecture mentions.
"""

from __future__ import annotations

import struct

from sim.core.events import PipeCreated, PipeSpace
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EAGAIN, EFAULT, EINVAL, ENOIOCTL, ENOMEM, EPIPE
from sim.kern.kern_descrip import (
    DTYPE_PIPE,
    FIONBIO,
    FIONREAD,
    FNONBLOCK,
    FREAD,
    FWRITE,
    O_CLOEXEC,
    O_NONBLOCK,
    S_IFIFO,
    File,
    Fileops,
    falloc,
    kern_close,
)
from sim.kern.kern_synch import PCATCH, msleep, wakeup
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread
from sim.kern.sched import PRIBIO
from sim.kern.uio import UIO_USERSPACE, Uio, uiomove

PIPE_SIZE = 16384  # sys/sys/pipe.h: a pipe buffer's usual size
BIG_PIPE_SIZE = 64 * 1024  # what a busy writer may grow it to
SMALL_PIPE_SIZE = 4096  # PAGE_SIZE: the minimum
MINPIPESIZE = PIPE_SIZE // 3  # wake a blocked writer once the reader has drained this far
PIPE_BUF = 512  # limits.h: writes this small are atomic

PIPE_MINDIRECT = 8192  # writes this large go direct

# pipe_state
PIPE_WANTR = 0x008  # a reader sleeps waiting for data
PIPE_WANTW = 0x010  # a writer sleeps waiting for space
PIPE_EOF = 0x080  # the other end is closed
PIPE_DIRECTW = 0x400  # a direct write is in progress: the data is in the writer's pages (pipe_map)


class PipeBuffer:
    __slots__ = ("buffer", "size", "cnt", "in_", "out", "kva")

    def __init__(self, size: int) -> None:
        self.buffer = bytearray(size)
        self.size, self.cnt, self.in_, self.out = size, 0, 0, 0
        self.kva = pcpu.machine.caches.kernel_buffer(size) if size else 0  # where the cache model sees it


class PipeMapping:
    """struct pipemapping: the writer's held pages of a direct write."""

    __slots__ = ("cnt", "pos", "ms")

    def __init__(self) -> None:
        self.cnt = 0  # bytes not yet read
        self.pos = 0  # offset of the next byte in the first page
        self.ms: list[int] = []  # the physical address of each held page


class Pipe:
    """One end of a pipe: the buffer its reader drains, and a link to the other end."""

    __slots__ = ("pipe_buffer", "pipe_state", "pipe_peer", "pipe_present", "pipe_map")

    def __init__(self, size: int) -> None:
        self.pipe_buffer = PipeBuffer(size)
        self.pipe_state = 0
        self.pipe_peer: Pipe | None = None
        self.pipe_present = True
        self.pipe_map = PipeMapping()


@syscall_handler
@kfunc
def sys_pipe2(td: Thread, fildes: int, flags: int) -> int:
    from sim.kern.support import copyout

    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        return EINVAL
    error, fds = kern_pipe(td, flags)
    if error:
        return error
    if copyout(struct.pack("<ii", *fds), fildes, 8) != 0:
        kern_close(td, fds[0])
        kern_close(td, fds[1])
        return EFAULT
    return 0


@kfunc
def kern_pipe(td: Thread, flags: int) -> tuple[int, tuple[int, int]]:
    """Two ends: the read end gets a PIPE_SIZE buffer now, the write end's (for the other direction) waits."""
    rpipe, wpipe = Pipe(PIPE_SIZE), Pipe(0)
    rpipe.pipe_peer, wpipe.pipe_peer = wpipe, rpipe
    nonblock = FNONBLOCK if flags & O_NONBLOCK else 0
    cloexec = bool(flags & O_CLOEXEC)
    error, rfd = falloc(td, DTYPE_PIPE, FREAD | FWRITE | nonblock, pipeops, rpipe, cloexec)
    if error:
        return error, (-1, -1)
    error, wfd = falloc(td, DTYPE_PIPE, FREAD | FWRITE | nonblock, pipeops, wpipe, cloexec)
    if error:
        kern_close(td, rfd)
        return error, (-1, -1)
    pcpu.machine.emit("proc", "pipe", PipeCreated(rfd, wfd, PIPE_SIZE))
    return 0, (rfd, wfd)


def _charge() -> None:
    machine = pcpu.machine
    machine.charge(machine.profile.pipe_op_ns)


@kfunc
def pipe_read(fp: File, uio: Uio, td: Thread) -> int:
    rpipe: Pipe = fp.f_data
    nread, error = 0, 0
    _charge()
    while uio.uio_resid:
        buf = rpipe.pipe_buffer  # a writer may have resized it while this reader slept
        if buf.cnt > 0:
            size = min(buf.size - buf.out, buf.cnt, uio.uio_resid)
            error = uiomove(buf.buffer, size, uio, buf.out, kcache=buf.kva)
            if error:
                break
            buf.out += size
            if buf.out >= buf.size:
                buf.out = 0
            buf.cnt -= size
            if buf.cnt == 0:
                buf.in_ = buf.out = 0  # empty: start again at the front (better for the cache)
            nread += size
        elif rpipe.pipe_state & PIPE_DIRECTW and rpipe.pipe_map.cnt:
            pmap = rpipe.pipe_map
            size = min(pmap.cnt, uio.uio_resid)
            error = uiomove_fromphys(pmap.ms, pmap.pos, size, uio)  # straight from the writer's pages
            if error:
                break
            nread += size
            pmap.pos += size
            pmap.cnt -= size
            if pmap.cnt == 0:
                rpipe.pipe_state &= ~(PIPE_DIRECTW | PIPE_WANTW)
                wakeup(rpipe)  # the writer may let go of its pages
        else:
            if rpipe.pipe_state & PIPE_EOF:
                break  # EOF: read returns what it has, possibly 0
            if rpipe.pipe_state & PIPE_WANTW:
                rpipe.pipe_state &= ~PIPE_WANTW
                wakeup(rpipe)
            if nread > 0:
                break
            if fp.f_flag & FNONBLOCK:
                error = EAGAIN
                break
            rpipe.pipe_state |= PIPE_WANTR
            error = msleep(rpipe, PRIBIO | PCATCH, "piperd")
            if error:
                break
            _charge()
    buf = rpipe.pipe_buffer
    if buf.cnt < MINPIPESIZE and rpipe.pipe_state & PIPE_WANTW:
        rpipe.pipe_state &= ~PIPE_WANTW  # write-blocking hysteresis: let the writer refill
        wakeup(rpipe)
    if buf.size - buf.cnt >= PIPE_BUF:
        pipeselwakeup(rpipe)
    return error


@kfunc
def pipe_write(fp: File, uio: Uio, td: Thread) -> int:
    rpipe: Pipe = fp.f_data
    wpipe = rpipe.pipe_peer
    _charge()
    if wpipe is None or not wpipe.pipe_present or wpipe.pipe_state & PIPE_EOF:
        return EPIPE  # nobody can ever read it: dofilewrite sends SIGPIPE
    buf = wpipe.pipe_buffer
    desiredsize = max(SMALL_PIPE_SIZE, buf.size)
    while desiredsize < buf.cnt + uio.uio_resid and desiredsize != BIG_PIPE_SIZE:
        desiredsize *= 2
    if desiredsize != buf.size:
        pipespace(wpipe, desiredsize)
        buf = wpipe.pipe_buffer
    if buf.size == 0:
        return ENOMEM
    orig_resid = uio.uio_resid
    error = 0
    while uio.uio_resid:
        buf = wpipe.pipe_buffer
        if wpipe.pipe_state & PIPE_EOF:
            error = EPIPE
            break
        if (
            uio.uio_segflg == UIO_USERSPACE
            and uio.uio_iov[0].iov_len >= PIPE_MINDIRECT
            and buf.size >= PIPE_MINDIRECT
            and not fp.f_flag & FNONBLOCK
        ):
            error = pipe_direct_write(wpipe, uio)
            if error:
                break
            continue
        if wpipe.pipe_state & PIPE_DIRECTW:
            # Buffered writes wait for a direct write in progress to finish.
            wpipe.pipe_state |= PIPE_WANTW
            error = msleep(wpipe, PRIBIO | PCATCH, "pipbww")
            if error:
                break
            continue
        space = buf.size - buf.cnt
        if space < uio.uio_resid and orig_resid <= PIPE_BUF:
            space = 0  # writes of PIPE_BUF or less are atomic: all or nothing
        if space > 0:
            size = min(space, uio.uio_resid)
            segsize = min(buf.size - buf.in_, size)
            error = uiomove(buf.buffer, segsize, uio, buf.in_, kcache=buf.kva)
            if error == 0 and segsize < size:
                error = uiomove(buf.buffer, size - segsize, uio, 0, kcache=buf.kva)  # wrapped around the end
            if error:
                break
            buf.in_ += size
            if buf.in_ >= buf.size:
                buf.in_ = size - segsize
            buf.cnt += size
        else:
            if wpipe.pipe_state & PIPE_WANTR:
                wpipe.pipe_state &= ~PIPE_WANTR
                wakeup(wpipe)
            if fp.f_flag & FNONBLOCK:
                error = EAGAIN
                break
            wpipe.pipe_state |= PIPE_WANTW
            error = msleep(wpipe, PRIBIO | PCATCH, "pipewr")
            if error:
                break
            _charge()
    if buf.cnt > 0 and wpipe.pipe_state & PIPE_WANTR:
        wpipe.pipe_state &= ~PIPE_WANTR  # there is something to read: wake the reader
        wakeup(wpipe)
    if uio.uio_resid != orig_resid and error == EPIPE:
        error = 0  # some bytes went: no EPIPE this time
    if buf.cnt:
        pipeselwakeup(wpipe)
    return error


@kfunc
def pipe_direct_write(wpipe: Pipe, uio: Uio) -> int:
    """Hold the writer's pages, let the reader copy from them, and sleep until it has taken them all."""
    while True:
        if wpipe.pipe_state & PIPE_EOF:
            return EPIPE
        if wpipe.pipe_state & PIPE_DIRECTW or wpipe.pipe_buffer.cnt > 0:
            # Another direct write, or buffered data the reader must drain first.
            if wpipe.pipe_state & PIPE_WANTR:
                wpipe.pipe_state &= ~PIPE_WANTR
                wakeup(wpipe)
            wpipe.pipe_state |= PIPE_WANTW
            error = msleep(wpipe, PRIBIO | PCATCH, "pipdww")
            if error:
                return error
            continue
        break
    error = pipe_build_write_buffer(wpipe, uio)
    if error:
        return error
    wpipe.pipe_state |= PIPE_DIRECTW
    error = 0
    while wpipe.pipe_state & PIPE_DIRECTW and not wpipe.pipe_state & PIPE_EOF:
        if wpipe.pipe_state & PIPE_WANTR:
            wpipe.pipe_state &= ~PIPE_WANTR
            wakeup(wpipe)
        pipeselwakeup(wpipe)
        wpipe.pipe_state |= PIPE_WANTW
        error = msleep(wpipe, PRIBIO | PCATCH, "pipdwt")
        if error:
            break
    if wpipe.pipe_state & PIPE_EOF:
        error = EPIPE
    elif error and wpipe.pipe_state & PIPE_DIRECTW:
        pipe_clone_write_buffer(wpipe)  # interrupted: what is unread moves into the kernel buffer
    wpipe.pipe_state &= ~PIPE_DIRECTW
    wpipe.pipe_map.ms = []
    return error


@kfunc
def pipe_build_write_buffer(wpipe: Pipe, uio: Uio) -> int:
    """Hold the pages under the writer's buffer (vm_fault_quick_hold_pages) and consume the uio."""
    iov = uio.uio_iov[0]
    size = min(iov.iov_len, wpipe.pipe_buffer.size)
    error, pages = vm_fault_quick_hold_pages(iov.iov_base, size)
    if error:
        return error
    pmap = wpipe.pipe_map
    pmap.ms, pmap.pos, pmap.cnt = pages, iov.iov_base & 0xFFF, size
    iov.iov_base += size
    iov.iov_len -= size
    uio.uio_resid -= size
    uio.uio_offset += size
    if iov.iov_len == 0:
        uio.uio_iov.pop(0)
    return 0


def vm_fault_quick_hold_pages(addr: int, length: int) -> tuple[int, list[int]]:
    """The physical page under each page of [addr, addr + length) in the current address space, faulting
    in any not yet mapped (sys/vm/vm_fault.c; the simulator does not wire them: nothing can take them away
    while the writer sleeps)."""
    from sim.vm.pmap import pmap_extract
    from sim.vm.vm_fault import vm_fault
    from sim.vm.vm_param import KERN_SUCCESS, VM_PROT_READ

    vm = pcpu.curthread.td_proc.p_vmspace
    pages = []
    for va in range(addr & ~0xFFF, addr + length, 4096):
        pa = pmap_extract(vm.vm_pmap, va)
        if pa == 0:
            if vm_fault(vm.vm_map, va, VM_PROT_READ) != KERN_SUCCESS:
                return EFAULT, []
            pa = pmap_extract(vm.vm_pmap, va)
        pages.append(pa & ~0xFFF)
    return 0, pages


def uiomove_fromphys(ms: list[int], offset: int, n: int, uio: Uio) -> int:
    """uiomove from physical pages: the reader copies out of the writer's pages, page by page."""
    physmem = pcpu.machine.physmem
    while n > 0:
        page, off = divmod(offset, 4096)
        chunk = min(n, 4096 - off)
        error = uiomove(physmem.read(ms[page] + off, chunk), chunk, uio, kcache=ms[page] + off)
        if error:
            return error
        offset += chunk
        n -= chunk
    return 0


def pipe_clone_write_buffer(wpipe: Pipe) -> None:
    """A direct write was interrupted: copy its unread bytes into the pipe buffer and finish the write there."""
    pmap, buf = wpipe.pipe_map, wpipe.pipe_buffer
    physmem = pcpu.machine.physmem
    data = bytearray()
    offset = pmap.pos
    while len(data) < pmap.cnt:
        page, off = divmod(offset, 4096)
        chunk = min(pmap.cnt - len(data), 4096 - off)
        data += physmem.read(pmap.ms[page] + off, chunk)
        offset += chunk
    if len(data) > buf.size:
        pipespace(wpipe, BIG_PIPE_SIZE)
        buf = wpipe.pipe_buffer
    buf.buffer[: len(data)] = data
    buf.cnt, buf.in_, buf.out = len(data), len(data) % buf.size, 0
    pmap.cnt = 0


def pipespace(cpipe: Pipe, size: int) -> None:
    """Give the pipe a buffer of another size, keeping what is in it."""
    old = cpipe.pipe_buffer
    new = PipeBuffer(size)
    if old.cnt:
        first = min(old.cnt, old.size - old.out)
        new.buffer[:first] = old.buffer[old.out : old.out + first]
        new.buffer[first : old.cnt] = old.buffer[: old.cnt - first]
        new.cnt = new.in_ = old.cnt
    cpipe.pipe_buffer = new
    pcpu.machine.emit("mem", "pipespace", PipeSpace(old.size, size))


def pipe_ioctl(fp: File, com: int, td: Thread) -> tuple[int, int | None]:
    if com == FIONREAD:
        cpipe = fp.f_data
        return 0, cpipe.pipe_map.cnt if cpipe.pipe_state & PIPE_DIRECTW else cpipe.pipe_buffer.cnt
    if com == FIONBIO:
        return 0, None
    return ENOIOCTL, None


def pipe_poll(fp: File, events: int, td: Thread) -> int:
    from sim.kern.sys_generic import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

    rpipe: Pipe = fp.f_data
    wpipe = rpipe.pipe_peer
    revents = 0
    if rpipe.pipe_buffer.cnt > 0 or rpipe.pipe_state & (PIPE_EOF | PIPE_DIRECTW):
        revents |= events & (POLLIN | POLLRDNORM)
    if (
        wpipe is None
        or not wpipe.pipe_present
        or wpipe.pipe_state & PIPE_EOF
        or not wpipe.pipe_state & PIPE_DIRECTW
        and (wpipe.pipe_buffer.size - wpipe.pipe_buffer.cnt >= PIPE_BUF or wpipe.pipe_buffer.size == 0)
    ):
        revents |= events & (POLLOUT | POLLWRNORM)
    return revents


def pipeselwakeup(cpipe: Pipe) -> None:
    from sim.kern.sys_generic import selwakeup

    selwakeup()


def pipe_stat(fp: File, td: Thread) -> tuple[int, int, int, int]:
    return S_IFIFO | 0o600, fp.f_data.pipe_buffer.cnt, 0, 4096


@kfunc
def pipe_close(fp: File, td: Thread) -> int:
    """pipeclose: the other end sees EOF (a reader gets 0, a writer EPIPE) and is woken to notice."""
    cpipe: Pipe = fp.f_data
    pipeselwakeup(cpipe)
    cpipe.pipe_present = False
    cpipe.pipe_state |= PIPE_EOF
    wakeup(cpipe)
    ppipe = cpipe.pipe_peer
    if ppipe is not None and ppipe.pipe_present:
        ppipe.pipe_state |= PIPE_EOF
        wakeup(ppipe)
    return 0


pipeops = Fileops(pipe_read, pipe_write, pipe_ioctl, pipe_stat, pipe_close, fo_poll=pipe_poll)
