"""The modelled kernel's own structures as D sees them: `curthread`, and fbt's typed args[].

`curthread` is a `struct thread *`: `curthread->td_proc->p_pid` reads the process of the thread on the CPU at the
firing, as the event log has it (sim/core/walker.py). fbt::f:entry's args[] are typed by the modelled function's
parameters (`pipe_write(fp, uio, td)`: args[0] is a `struct file *`), and arg0..arg9 are their raw values (an
object's address); a clause that reads them arms f's arguments, so that each entry records them
(sim/kern/dtrace_args.py), and the objects they point to are written into the session's memory at the firing.

Each struct has FreeBSD's tag and field names (sys/sys/proc.h, file.h, pipe.h, uio.h, socketvar.h) but only the
fields the simulator models, laid out by the C ABI over those fields: sizeof and offsetof of these types are
trapscope's, not FreeBSD's.
"""

from __future__ import annotations

import inspect

from lark import Tree

from sim.core.events import KernelObject
from sim.core.walker import MAXCOMLEN
from sim.kern.dtrace_args import FIELDS
from sim.kern.proc import TRAPFRAME_FIELDS
from sim.trace import d_interp
from sim.trace.d_decls import fail
from sim.trace.d_output import CHAR, INT, INT64, STRING, VOID, DType
from sim.trace.d_types import TYPEDEFS, StructType, array_of, lay_out, new_struct, pointer_to
from sim.trace.providers import kernel_function_objects
from sim.trace.sdt_providers import SIGNATURES, thread_object

U_INT, SHORT = TYPEDEFS["u_int"], DType("short", "int", 2, True)
DEVSTAT_NAME_LEN = 16  # sys/devicestat.h


def _struct(tag: str) -> StructType:
    return new_struct("struct", tag)


TAGS = ("proc", "thread", "file", "pipe", "pipebuf", "pipemapping", "uio", "socket", "sockbuf", "ucred", "trapframe",
        "vm_map", "vm_map_entry", "vm_object", "vm_page", "bio", "devstat")  # fmt: skip
ALL_STRUCTS = [_struct(tag) for tag in TAGS]
(PROC, THREAD, FILE, PIPE, PIPEBUF, PIPEMAPPING, UIO, SOCKET, SOCKBUF, UCRED, TRAPFRAME, VM_MAP, VM_MAP_ENTRY,
 VM_OBJECT, VM_PAGE, BIO, DEVSTAT) = ALL_STRUCTS  # fmt: skip
LONG, ULONG, U_CHAR, U_SHORT = TYPEDEFS["register_t"], TYPEDEFS["u_long"], TYPEDEFS["u_char"], TYPEDEFS["u_short"]
VM_OFFSET, VM_OOFFSET, VM_PINDEX = TYPEDEFS["vm_offset_t"], TYPEDEFS["vm_ooffset_t"], TYPEDEFS["vm_pindex_t"]
COMM = array_of(CHAR, MAXCOMLEN + 1)
lay_out(UCRED, [("cr_uid", TYPEDEFS["uid_t"], 0), ("cr_ruid", TYPEDEFS["uid_t"], 0),
                ("cr_gid", TYPEDEFS["gid_t"], 0), ("cr_flags", U_INT, 0)])  # fmt: skip
lay_out(PROC, [("p_pid", TYPEDEFS["pid_t"], 0), ("p_comm", COMM, 0), ("p_flag", INT, 0),
               ("p_ucred", pointer_to(UCRED), 0)])  # fmt: skip
lay_out(TRAPFRAME, [(name, LONG, 0) for name in TRAPFRAME_FIELDS])
lay_out(THREAD, [("td_proc", pointer_to(PROC), 0), ("td_tid", TYPEDEFS["lwpid_t"], 0), ("td_name", COMM, 0),
                 ("td_flags", INT, 0), ("td_ucred", pointer_to(UCRED), 0), ("td_frame", pointer_to(TRAPFRAME), 0),
                 ("td_errno", INT, 0), ("td_priority", U_CHAR, 0)])  # fmt: skip
lay_out(VM_MAP, [("size", TYPEDEFS["vm_size_t"], 0), ("timestamp", U_INT, 0)])
lay_out(VM_OBJECT, [("size", VM_PINDEX, 0), ("resident_page_count", INT, 0), ("ref_count", INT, 0),
                    ("shadow_count", INT, 0), ("backing_object", pointer_to(VM_OBJECT), 0),
                    ("backing_object_offset", VM_OOFFSET, 0), ("flags", U_SHORT, 0), ("type", U_CHAR, 0)])  # fmt: skip
lay_out(VM_MAP_ENTRY, [("start", VM_OFFSET, 0), ("end", VM_OFFSET, 0), ("object", pointer_to(VM_OBJECT), 0),
                       ("offset", VM_OOFFSET, 0), ("eflags", INT, 0), ("protection", TYPEDEFS["vm_prot_t"], 0),
                       ("max_protection", TYPEDEFS["vm_prot_t"], 0), ("inheritance", U_CHAR, 0),
                       ("wired_count", INT, 0)])  # fmt: skip
lay_out(VM_PAGE, [("object", pointer_to(VM_OBJECT), 0), ("pindex", VM_PINDEX, 0),
                  ("phys_addr", TYPEDEFS["vm_paddr_t"], 0), ("wire_count", U_INT, 0), ("queue", U_CHAR, 0),
                  ("flags", U_SHORT, 0), ("aflags", U_CHAR, 0), ("oflags", U_CHAR, 0), ("act_count", U_CHAR, 0),
                  ("valid", U_CHAR, 0), ("dirty", U_CHAR, 0)])  # fmt: skip
lay_out(FILE, [("f_data", pointer_to(VOID), 0), ("f_type", SHORT, 0), ("f_flag", U_INT, 0), ("f_count", U_INT, 0),
               ("f_offset", TYPEDEFS["off_t"], 0)])  # fmt: skip
lay_out(PIPEBUF, [("cnt", U_INT, 0), ("in", U_INT, 0), ("out", U_INT, 0), ("size", U_INT, 0)])
lay_out(PIPEMAPPING, [("cnt", TYPEDEFS["vm_size_t"], 0), ("pos", TYPEDEFS["vm_size_t"], 0)])
lay_out(PIPE, [("pipe_buffer", PIPEBUF, 0), ("pipe_map", PIPEMAPPING, 0), ("pipe_peer", pointer_to(PIPE), 0),
               ("pipe_state", U_INT, 0), ("pipe_present", INT, 0)])  # fmt: skip
lay_out(UIO, [("uio_offset", TYPEDEFS["off_t"], 0), ("uio_resid", TYPEDEFS["ssize_t"], 0), ("uio_segflg", INT, 0),
              ("uio_rw", INT, 0), ("uio_td", pointer_to(THREAD), 0)])  # fmt: skip
lay_out(SOCKBUF, [("sb_cc", U_INT, 0), ("sb_hiwat", U_INT, 0), ("sb_lowat", U_INT, 0), ("sb_mbcnt", U_INT, 0),
                  ("sb_mbmax", U_INT, 0), ("sb_flags", SHORT, 0), ("sb_state", SHORT, 0)])  # fmt: skip
lay_out(SOCKET, [("so_type", SHORT, 0), ("so_state", SHORT, 0), ("so_rcv", SOCKBUF, 0), ("so_snd", SOCKBUF, 0)])
lay_out(BIO, [("bio_cmd", U_CHAR, 0)])  # BIO_READ or BIO_WRITE (sys/bio.h)
lay_out(DEVSTAT, [("device_name", array_of(CHAR, DEVSTAT_NAME_LEN), 0), ("unit_number", INT, 0)])
KERNEL_STRUCTS = {t.name: t for t in ALL_STRUCTS}
KERNEL_TAGS = {("struct", t.tag): t for t in KERNEL_STRUCTS.values()}
assert {tag for tag, _ in FIELDS.values()} <= set(KERNEL_STRUCTS), "each recorded object has its D struct"


def curthread(c):
    """The Expr of `curthread`: the firing thread's struct thread, written at this firing from the walker's ids."""
    state = c.state_ref

    def thread_address(f) -> int:
        return materialize(state[0].memory, thread_object(f.tid, f.pid, f.execname))

    return d_interp.Expr(thread_address, pointer_to(THREAD))


def materialize(memory, thing: KernelObject) -> int:
    """Write a recorded object (and those its pointers lead to) into memory at its address; its address."""
    dtype = KERNEL_STRUCTS[thing.tag]
    at = memory.storage_for(("kernel", thing.address), dtype.size, thing.address)
    memory.write(at, bytes(dtype.size))
    _fill(memory, at, dtype, thing)
    return at


def _fill(memory, at: int, dtype: StructType, thing: KernelObject) -> None:
    for name, value in thing.fields:
        member = dtype.member(name)
        where = at + member.offset
        if isinstance(value, KernelObject):
            if isinstance(member.type, StructType):  # embedded (a pipe's pipe_buffer)
                _fill(memory, where, member.type, value)
                continue
            memory.store(where, member.type, value.address)
            if value.fields:
                materialize(memory, value)
        elif isinstance(value, bytes | str):
            data = value if isinstance(value, bytes) else value.encode()
            memory.write(where, data[: member.type.size - 1].ljust(member.type.size, b"\0"))
        else:
            memory.store(where, member.type, value)


def enter_clause(c, node: Tree, probes: list) -> None:
    """Note the clause's probes (args[] is typed by them); a clause on fbt entry probes that reads arguments arms
    their functions' arguments (Program.fbt_arguments -> KernelConfig.dtrace_fbt_arguments)."""
    c.clause_probes = probes
    entries = [p for p in probes if p.provider == "fbt" and p.name == "entry"]
    if entries and any(_reads_arguments(sub) for sub in node.iter_subtrees()):
        c.fbt_arguments.update(p.function for p in entries)


def _reads_arguments(node: Tree) -> bool:
    if node.data != "ident":
        return False
    name = str(node.children[0])
    return name == "args" or (name.startswith("arg") and name[3:].isdigit())


def typed_args(c, node: Tree, n: int):
    """args[n] of a clause on fbt entry probes whose functions' parameter n has one type, or on SDT probes
    (sched, proc, io) whose argument n has one; None otherwise."""
    if c.clause_probes and all((p.provider, p.name) in SIGNATURES for p in c.clause_probes):
        return _sdt_args(c, node, n)
    entries = [p for p in c.clause_probes if p.provider == "fbt" and p.name == "entry"]
    if not entries or len(entries) != len(c.clause_probes):
        return None
    types = {parameter_type(p.function, n) for p in entries}
    if len(types) != 1:
        return None
    dtype = types.pop()
    if dtype is None:
        raise fail(node, f"args[{n}] is out of range for {entries[0].description}")
    if not isinstance(getattr(dtype, "target", None), StructType):
        return d_interp.Expr(lambda f: f.arg(n), dtype)
    state = c.state_ref

    def address(f) -> int:
        f.arg(n)  # the arguments, made on first use
        value = f.args.facts[n]
        return materialize(state[0].memory, value) if value.fields else value.address

    return d_interp.Expr(address, dtype)


SDT_TYPES = {"struct thread *": pointer_to(THREAD), "struct proc *": pointer_to(PROC),
             "struct bio *": pointer_to(BIO), "struct devstat *": pointer_to(DEVSTAT), "void *": pointer_to(VOID),
             "int": INT, "char *": STRING}  # fmt: skip


def _sdt_args(c, node: Tree, n: int):
    """args[n] of SDT probes, typed by their SDT_PROBE_DEFINE (a `char *` path is read as D's string)."""
    signatures = {SIGNATURES[(p.provider, p.name)] for p in c.clause_probes}
    types = {signature[n] if n < len(signature) else None for signature in signatures}
    if len(types) != 1:
        return None
    declared = types.pop()
    if declared is None:
        raise fail(node, f"args[{n}] is out of range for {c.clause_probes[0].description}")
    dtype = SDT_TYPES[declared]
    if not isinstance(getattr(dtype, "target", None), StructType):
        return d_interp.Expr(lambda f: (f.arg(n), f.args.facts[n])[1], dtype)
    state = c.state_ref

    def address(f) -> int:
        f.arg(n)  # the arguments, made on first use
        return materialize(state[0].memory, f.args.facts[n])

    return d_interp.Expr(address, dtype)


def parameter_type(function: str, n: int) -> DType | None:
    """D's type for the modelled function's parameter n, from its annotation (a kernel object: a pointer to its
    struct; an int: int64_t); None past its parameters."""
    fn = kernel_function_objects().get(function)
    parameters = list(inspect.signature(fn).parameters.values()) if fn is not None else []
    if n >= len(parameters):
        return None
    annotation = str(parameters[n].annotation).split("|")[0].strip().rsplit(".", 1)[-1]
    described = FIELDS.get(annotation)
    if described is not None:
        return pointer_to(KERNEL_STRUCTS[described[0]])
    return INT64 if annotation in ("int", "bool") else pointer_to(VOID)
