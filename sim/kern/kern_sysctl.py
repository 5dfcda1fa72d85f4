"""__sysctl(2) (sys/kern/kern_sysctl.c, FreeBSD 11), for the few names the simulated programs read.

libc's sysctlbyname() makes two calls: {0, 3} ("sysctl.name2oid") turns the name into its OID, then the OID is
read. A name this kernel has not got is ENOENT, as on FreeBSD: the simulated machine is amd64 with no network
stack configured (no `options INET`), so hw.cpufreq.arm_freq and net.inet.* are not there. A value too large for
the caller's buffer is ENOMEM.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EINVAL, ENOENT, ENOMEM, EPERM
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread

CTL_MAXNAME = 24
NAME2OID = (0, 3)


def _string(text: str) -> Callable[[], bytes]:
    return lambda: text.encode() + b"\0"


def _int(value: Callable[[], int], fmt: str = "<i") -> Callable[[], bytes]:
    return lambda: struct.pack(fmt, value())


def _model() -> bytes:
    return f"trapscope simulated amd64 CPU ({pcpu.machine.profile.name} profile)".encode() + b"\0"


def _pipe_mindirect() -> int:
    from sim.kern.sys_pipe import PIPE_MINDIRECT

    return PIPE_MINDIRECT


def _maxsockbuf() -> int:
    from sim.kern.uipc_socket import SB_MAX

    return SB_MAX


# name -> (OID, the value's bytes). The well-known numbers are sys/sysctl.h's; OID_AUTO ones start at 0x100.
MIB: dict[str, tuple[tuple[int, ...], Callable[[], bytes]]] = {
    "kern.ostype": ((1, 1), _string("FreeBSD")),
    "kern.osrelease": ((1, 2), _string("11.0-RELEASE")),
    "kern.hostname": ((1, 10), _string("trapscope")),
    "kern.ident": ((1, 0x100), _string("GENERIC")),
    "hw.machine": ((6, 1), _string("amd64")),
    "hw.model": ((6, 2), _model),
    "hw.ncpu": ((6, 3), _int(lambda: 1)),
    "hw.physmem": ((6, 5), _int(lambda: pcpu.machine.profile.phys_mem_bytes, "<Q")),
    "hw.pagesizes": ((6, 0x100), lambda: struct.pack("<3Q", 4096, 2 << 20, 0)),  # MAXPAGESIZES; no 1 GiB pages
    "kern.ipc.pipe_mindirect": ((1, 30, 0x100), _int(_pipe_mindirect, "<q")),
    "kern.ipc.maxsockbuf": ((1, 30, 1), _int(_maxsockbuf, "<Q")),
}
BY_OID = {oid: value for oid, value in MIB.values()}


@syscall_handler
@kfunc
def sys___sysctl(td: Thread, name: int, namelen: int, old: int, oldlenp: int, new: int, newlen: int) -> int:
    from sim.kern.support import copyin, copyout

    if namelen > CTL_MAXNAME or namelen < 2:
        return EINVAL
    raw = bytearray(4 * namelen)
    error = copyin(name, raw, len(raw))
    if error:
        return error
    oid = struct.unpack(f"<{namelen}i", raw)
    if oid == NAME2OID:
        text = bytearray(newlen)
        error = copyin(new, text, newlen)
        if error:
            return error
        found = MIB.get(text.decode("ascii", "replace").rstrip("\0"))
        if found is None:
            return ENOENT
        value = struct.pack(f"<{len(found[0])}i", *found[0])
    else:
        if new and newlen:
            return EPERM  # nothing here is writable
        read = BY_OID.get(oid)
        if read is None:
            return ENOENT
        value = read()
    return _copyout_value(value, old, oldlenp, copyin, copyout)


def _copyout_value(value: bytes, old: int, oldlenp: int, copyin, copyout) -> int:
    """SYSCTL_OUT: the value if it fits *oldlenp (ENOMEM with as much as fits if not), and its length."""
    lenbuf = bytearray(8)
    if oldlenp:
        error = copyin(oldlenp, lenbuf, 8)
        if error:
            return error
    room = struct.unpack("<Q", lenbuf)[0]
    error = 0
    if old:
        error = copyout(value[:room], old, min(room, len(value)))
        if not error and room < len(value):
            error = ENOMEM
    if oldlenp:
        written = copyout(struct.pack("<Q", min(room, len(value)) if old else len(value)), oldlenp, 8)
        error = error or written
    return error
