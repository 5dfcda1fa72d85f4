"""copyin() and copyinstr(): D reading the traced process's user memory (dtrace.c's DIF_SUBR_COPYIN/COPYINSTR).

A program evaluated live, as its run happens (trapscope dtrace -c), reads the firing process's memory as it is at
that moment: the address is translated through that process's own page tables, without side effects, and the
bytes come from the simulated physical memory. As DTrace's dtrace_copyin cannot take a page fault, a page that is
not resident (never touched, or not mapped) is a fault: "invalid address", DTRACEFLT_BADADDR, and the clause is
abandoned. copyin(addr, size) copies into the firing's scratch memory and gives a pointer to it; copyinstr(addr
[, maxlen]) gives the string (at most strsize or maxlen bytes, up to its NUL). A stored run keeps no memory, so
tracing one afterwards cannot copy in: the error says so.
"""

from __future__ import annotations

from lark import Tree

from sim.core.pcpu import pcpu
from sim.machine.mmu import walk_page_tables
from sim.machine.physmem import PAGE_MASK, PAGE_SIZE
from sim.trace.d_interp import DRuntimeError, Expr
from sim.trace.d_memory import SCRATCH_BYTES, STRING_SIZE, fault
from sim.trace.d_output import STRING, VOID
from sim.trace.d_subroutines import _check_call
from sim.trace.d_system import DTRACEFLT_UPRIV
from sim.trace.d_types import pointer_to


class AddressSpaces:
    """The live run's processes, by pid: their page tables in the machine's physical memory, as they are at the
    firing (read while the run goes on: pcpu holds the run's machine and kernel)."""

    def read(self, pid: int, va: int, length: int) -> bytes:
        if pcpu.machine is None:
            raise DRuntimeError("copyin( ) has no process to read once the run has ended", DTRACEFLT_UPRIV)
        physmem = pcpu.machine.physmem
        cr3 = self._cr3(pid)
        out = bytearray()
        while length > 0:
            n = min(PAGE_SIZE - (va & PAGE_MASK), length)
            walked = walk_page_tables(physmem, cr3, va)
            if "pa" not in walked:
                raise fault(va)
            out += physmem.read(walked["pa"], n)
            va, length = va + n, length - n
        return bytes(out)

    def _cr3(self, pid: int) -> int:
        for p in pcpu.kernel.procs:
            vmspace = getattr(p, "p_vmspace", None)
            if p.p_pid == pid and vmspace is not None:
                return vmspace.vm_pmap.pm_cr3
        raise DRuntimeError(f"pid {pid} has no user address space to copy in from", DTRACEFLT_UPRIV)


def _spaces(st) -> AddressSpaces:
    if st.address_spaces is None:
        raise DRuntimeError(
            "copyin( ) reads the traced process's memory as the run happens: a stored run kept none (trace the "
            "command live, trapscope dtrace -c)", DTRACEFLT_UPRIV,
        )  # fmt: skip
    return st.address_spaces


def compile_copyin(compiler, node: Tree, args: list[Tree]):
    address, size = _check_call(compiler, node, "copyin", args, ("int", "int"), 2)
    state, afn, sfn = compiler.state_ref, address.fn, size.fn

    def copyin(f) -> int:
        st = state[0]
        n = sfn(f)
        if not 0 <= n <= SCRATCH_BYTES:
            raise DRuntimeError(f"out of scratch space: copyin of {n} bytes", DTRACEFLT_UPRIV)
        data = _spaces(st).read(f.pid, afn(f) & 0xFFFF_FFFF_FFFF_FFFF, n)
        at = st.memory.alloca(st.firings, n)
        st.memory.write(at, data)
        return at

    return Expr(copyin, pointer_to(VOID))


def compile_copyinstr(compiler, node: Tree, args: list[Tree]):
    exprs = _check_call(compiler, node, "copyinstr", args, ("int", "int"), 1)
    state, afn = compiler.state_ref, exprs[0].fn
    limit = exprs[1].fn if len(exprs) > 1 else (lambda f: STRING_SIZE)

    def copyinstr(f) -> str:
        most = max(0, min(limit(f), STRING_SIZE))
        va = afn(f) & 0xFFFF_FFFF_FFFF_FFFF
        spaces, out = _spaces(state[0]), bytearray()
        while len(out) < most:  # a page at a time: the string may end before an unmapped page
            n = min(PAGE_SIZE - (va & PAGE_MASK), most - len(out))
            chunk = spaces.read(f.pid, va, n)
            end = chunk.find(0)
            if end >= 0:
                out += chunk[:end]
                break
            out += chunk
            va += n
        return out[: most - 1 if len(out) >= most else len(out)].decode("latin-1")

    return Expr(copyinstr, STRING)


SUBROUTINES = {"copyin": compile_copyin, "copyinstr": compile_copyinstr}
