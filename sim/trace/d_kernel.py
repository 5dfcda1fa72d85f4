"""The modelled kernel's own structures as D sees them: `curthread` is a `struct thread *`, and
`curthread->td_proc->p_pid` reads the process of the thread on the CPU at the firing.

Each struct has FreeBSD's tag and field names (sys/sys/proc.h) but only the fields trapscope's event log knows at
a probe: the thread's id and name, its process's id and p_comm, as the walker has them at that event
(sim/core/walker.py). The layout is the C ABI's over those fields, not FreeBSD's full struct, so sizeof and
offsetof of these types are trapscope's. The objects are written into the session's memory at each firing that
reads curthread, at addresses derived from the thread and process ids (the kernel's direct map: 0xfffff800...).

fbt entry probes carry no arguments: the event log records when a modelled function is entered, not its
arguments, so a clause on one may not read arg0..arg9 or args[] (rather than reading zeros as arguments).
"""

from __future__ import annotations

from lark import Tree

from sim.core.walker import MAXCOMLEN
from sim.trace import d_interp
from sim.trace.d_decls import fail
from sim.trace.d_output import CHAR, DType
from sim.trace.d_types import TYPEDEFS, array_of, lay_out, new_struct, pointer_to

DIRECT_MAP = 0xFFFF_F800_0000_0000  # amd64's direct map, where the kernel's malloc'd objects are
THREAD_STRIDE = 0x1000  # one struct thread's place per thread id (FreeBSD's are ~1.2 KB, zone-allocated)
PROC_BASE = DIRECT_MAP + 0x4000_0000  # struct proc objects, one per pid, apart from the threads

PROC = new_struct("struct", "proc")
lay_out(PROC, [("p_pid", TYPEDEFS["pid_t"], 0), ("p_comm", array_of(CHAR, MAXCOMLEN + 1), 0)])
THREAD = new_struct("struct", "thread")
lay_out(THREAD, [
    ("td_proc", pointer_to(PROC), 0),
    ("td_tid", TYPEDEFS["lwpid_t"], 0),
    ("td_name", array_of(CHAR, MAXCOMLEN + 1), 0),
])  # fmt: skip
KERNEL_TAGS = {("struct", "proc"): PROC, ("struct", "thread"): THREAD}
CURTHREAD_TYPE = pointer_to(THREAD)


def _field(struct, name: str) -> tuple[int, DType]:
    member = struct.members[name]
    return member.offset, member.type


def curthread(c):
    """The Expr of `curthread`: the address of the firing thread's struct thread, written at this firing."""
    state = c.state_ref
    tid_at, tid_type = _field(THREAD, "td_tid")
    proc_at, proc_type = _field(THREAD, "td_proc")
    name_at, _ = _field(THREAD, "td_name")
    pid_at, pid_type = _field(PROC, "p_pid")
    comm_at, _ = _field(PROC, "p_comm")

    def thread_address(f) -> int:
        memory = state[0].memory
        thread = memory.storage_for(("thread", f.tid), THREAD.size, DIRECT_MAP + f.tid * THREAD_STRIDE)
        proc = memory.storage_for(("proc", f.pid), PROC.size, PROC_BASE + f.pid * THREAD_STRIDE)
        comm = f.execname.encode()[:MAXCOMLEN]
        memory.store(thread + tid_at, tid_type, f.tid)
        memory.store(thread + proc_at, proc_type, proc)
        memory.write(thread + name_at, comm.ljust(MAXCOMLEN + 1, b"\0"))
        memory.store(proc + pid_at, pid_type, f.pid)
        memory.write(proc + comm_at, comm.ljust(MAXCOMLEN + 1, b"\0"))
        return thread

    return d_interp.Expr(thread_address, CURTHREAD_TYPE)


def check_arguments(node: Tree, probes: list) -> None:
    """Refuse arg0..arg9 and args[] in a clause enabled on an fbt entry probe, which records no arguments."""
    entries = [p for p in probes if p.provider == "fbt" and p.name == "entry"]
    if not entries:
        return
    for sub in node.iter_subtrees():
        if sub.data != "ident":
            continue
        name = str(sub.children[0])
        if name == "args" or (name.startswith("arg") and name[3:].isdigit()):
            probe = entries[0]
            raise fail(sub, f"{name} is not available at {probe.description}: trapscope's event log records when a "
                       "modelled kernel function is entered, not its arguments")  # fmt: skip
