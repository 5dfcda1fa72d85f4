"""fbt's arguments: what an armed function's entry records of the arguments it was called with.

A D clause on fbt::f:entry that reads args[] or arg0..arg9 arms f's arguments (KernelConfig.dtrace_fbt_arguments,
set by sim/trace/dtrace.py); at each call of f, kfunc's wrapper asks the recorder here for the facts of its
arguments, and the enter event carries them (EntryArguments): integers as they are, kernel objects as their fields
by FreeBSD's names, following pointers a few levels deep (a struct file's f_data to its struct pipe, the pipe's
pipe_buffer ...). The facts are taken at the probe, so D reads the object as it was when the function was entered.
An object's address is numbered in the order the run first passed it, from OBJECT_BASE, one OBJECT_STRIDE each:
deterministic, as every run is.
"""

from __future__ import annotations

from sim.core.events import EntryArguments, KernelObject
from sim.kern.proc import TRAPFRAME_FIELDS, Trapframe

DIRECT_MAP = 0xFFFF_F800_0000_0000  # amd64's direct map, where the kernel's malloc'd objects are
THREAD_BASE = DIRECT_MAP  # a struct thread per thread id (D's curthread is the same object: sim/trace/d_kernel.py)
PROC_BASE = DIRECT_MAP + 0x4000_0000  # a struct proc per pid
OBJECT_BASE = DIRECT_MAP + 0x8000_0000  # every other object, numbered
OBJECT_STRIDE = 0x400  # more than any struct below takes, as D lays them out
DEPTH = 3  # pointers followed from an argument: fp -> f_data (pipe) -> pipe_peer (pipe) -> its fields

# Python class -> (D struct tag, ((D field, attribute), ...)): the fields each object's facts hold.
FIELDS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "File": ("struct file", (("f_data", "f_data"), ("f_type", "f_type"), ("f_flag", "f_flag"),
                             ("f_offset", "f_offset"), ("f_count", "f_count"))),
    "Pipe": ("struct pipe", (("pipe_buffer", "pipe_buffer"), ("pipe_map", "pipe_map"), ("pipe_state", "pipe_state"),
                             ("pipe_peer", "pipe_peer"), ("pipe_present", "pipe_present"))),
    "PipeMapping": ("struct pipemapping", (("cnt", "cnt"), ("pos", "pos"))),
    "PipeBuffer": ("struct pipebuf", (("cnt", "cnt"), ("in", "in_"), ("out", "out"), ("size", "size"))),
    "Uio": ("struct uio", (("uio_offset", "uio_offset"), ("uio_resid", "uio_resid"), ("uio_segflg", "uio_segflg"),
                           ("uio_rw", "uio_rw"), ("uio_td", "uio_td"))),
    "Thread": ("struct thread", (("td_proc", "td_proc"), ("td_tid", "td_tid"), ("td_flags", "td_flags"),
                                 ("td_ucred", "td_ucred"), ("td_frame", "td_frame"), ("td_errno", "td_errno"),
                                 ("td_priority", "td_priority"))),
    "Proc": ("struct proc", (("p_pid", "p_pid"), ("p_comm", "p_comm"), ("p_flag", "p_flag"),
                             ("p_ucred", "p_ucred"))),
    "Ucred": ("struct ucred", (("cr_uid", "cr_uid"), ("cr_ruid", "cr_ruid"), ("cr_gid", "cr_gid"),
                               ("cr_flags", "cr_flags"))),
    "Trapframe": ("struct trapframe", tuple((name, name) for name in TRAPFRAME_FIELDS)),
    "VmMap": ("struct vm_map", (("size", "size"), ("timestamp", "timestamp"))),
    "VmMapEntry": ("struct vm_map_entry", (("start", "start"), ("end", "end"), ("object", "object"),
                                           ("offset", "offset"), ("eflags", "eflags"), ("protection", "protection"),
                                           ("max_protection", "max_protection"), ("inheritance", "inheritance"),
                                           ("wired_count", "wired"))),
    "VmObject": ("struct vm_object", (("size", "size"), ("resident_page_count", "resident_page_count"),
                                      ("ref_count", "ref_count"), ("shadow_count", "shadow_count"),
                                      ("backing_object", "backing_object"),
                                      ("backing_object_offset", "backing_object_offset"), ("flags", "flags"),
                                      ("type", "type"))),
    "VmPage": ("struct vm_page", (("object", "object"), ("pindex", "pindex"), ("phys_addr", "phys_addr"),
                                  ("wire_count", "wire_count"), ("queue", "queue"), ("flags", "flags"),
                                  ("aflags", "aflags"), ("oflags", "oflags"), ("act_count", "act_count"),
                                  ("valid", "valid"), ("dirty", "dirty"))),
    "Socket": ("struct socket", (("so_type", "so_type"), ("so_state", "so_state"), ("so_rcv", "so_rcv"),
                                 ("so_snd", "so_snd"))),
    "Sockbuf": ("struct sockbuf", (("sb_cc", "sb_cc"), ("sb_hiwat", "sb_hiwat"), ("sb_lowat", "sb_lowat"),
                                   ("sb_mbcnt", "sb_mbcnt"), ("sb_mbmax", "sb_mbmax"), ("sb_flags", "sb_flags"),
                                   ("sb_state", "sb_state"))),
}  # fmt: skip


class ArgumentRecorder:
    """Called by kfunc as recorder(function, arguments) at each entry: the facts of an armed function's arguments,
    or None. It keeps each object it numbered, so that no other object can take its identity."""

    def __init__(self, functions: frozenset[str]) -> None:
        self.functions = functions
        self.addresses: dict[int, int] = {}
        self.kept: list[object] = []

    def __call__(self, function: str, arguments: tuple) -> EntryArguments | None:
        if function not in self.functions:
            return None
        return EntryArguments(tuple(self._fact(value, DEPTH) for value in arguments))

    def _fact(self, value: object, depth: int) -> int | str | KernelObject:
        if value is None:
            return 0
        if isinstance(value, int | str):
            return int(value) if isinstance(value, int) else value
        described = next((FIELDS[k.__name__] for k in type(value).__mro__ if k.__name__ in FIELDS), None)
        address = self._address(value)
        if described is None or depth < 0:
            return KernelObject(described[0] if described else "", address, ())
        tag, fields = described
        read = value.__getitem__ if isinstance(value, Trapframe) else lambda name: getattr(value, name, 0)
        return KernelObject(tag, address, tuple((name, self._fact(read(attribute), depth - 1))
                                                for name, attribute in fields))  # fmt: skip

    def _address(self, value: object) -> int:
        kind = type(value).__name__
        if kind == "Thread":
            return THREAD_BASE + value.td_tid * OBJECT_STRIDE * 4  # type: ignore[attr-defined]
        if kind == "Proc":
            return PROC_BASE + value.p_pid * OBJECT_STRIDE * 4  # type: ignore[attr-defined]
        address = self.addresses.get(id(value))
        if address is None:
            address = self.addresses[id(value)] = OBJECT_BASE + len(self.kept) * OBJECT_STRIDE
            self.kept.append(value)
        return address
