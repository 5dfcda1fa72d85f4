"""Speculative tracing: speculation(), speculate(), commit() and discard(), as DTrace runs them.

A clause that calls speculate(ID) records into speculative buffer ID instead of the principal buffer; commit(ID)
copies that buffer into the principal buffer (what dtrace then prints), discard(ID) throws it away. As in the
kernel (dtrace.c: dtrace_speculation, dtrace_speculation_buffer, dtrace_speculation_commit/discard/clean):

- there are `nspec` buffers (option, default 1); speculation() makes an inactive one active and returns its ID
  (1..nspec), or 0 when none is free (counted: dtrace reports "N failed speculations" at the end);
- speculate(0), or an ID whose buffer is not active, drops the clause's record silently; an ID past nspec is an
  illegal operation (a runtime error);
- commit() and discard() of a buffer that is not active do nothing; a committed or discarded buffer becomes free
  again only when the cleaner runs (the cleanrate option, 101 Hz by default), not at once;
- the order of actions in a clause is checked when it compiles, in libdtrace's words (dt_cc.c: dt_stmt_append):
  no data-recording action after commit(), no speculate() after one, no aggregation or exit() after speculate().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lark import Tree

from sim.trace import d_options
from sim.trace.d_interp import DRuntimeError, Expr
from sim.trace.d_output import INT
from sim.trace.d_parser import CompileError
from sim.trace.d_system import DTRACEFLT_ILLOP
from sim.trace.providers import Firing

INACTIVE, ACTIVE, COMMITTING, DISCARDING = "inactive", "active", "committing", "discarding"
# Actions that change the system (DTRACEACT_ISDESTRUCTIVE): they need -w and may not follow speculate().
DESTRUCTIVE = {"chill", "raise", "stop", "panic", "breakpoint", "system", "copyout", "copyoutstr"}


@dataclass
class Buffer:
    state: str = INACTIVE
    records: list[str] = field(default_factory=list)
    free_at: int = 0  # when the cleaner makes a committed or discarded buffer inactive again


class Speculations:
    """One tracing session's speculative buffers (one CPU's: the simulated machine has one)."""

    def __init__(self, options: dict[str, int | str]) -> None:
        self.buffers = [Buffer() for _ in range(d_options.get(options, "nspec"))]
        self.clean_period = max(d_options.get(options, "cleanrate"), 1)
        self.busy_drops = 0  # speculation() found every buffer still committing or discarding
        self.unavailable_drops = 0  # speculation() found every buffer active
        self.target: int | None = None  # the ID the running clause speculates to

    def _clean(self, t: int) -> None:
        for buffer in self.buffers:
            if buffer.state in (COMMITTING, DISCARDING) and t >= buffer.free_at:
                buffer.state, buffer.records = INACTIVE, []

    def _free_at(self, t: int) -> int:
        """The cleaner's next run after t: it runs every clean period from time 0."""
        return (t // self.clean_period + 1) * self.clean_period

    def speculation(self, t: int) -> int:
        self._clean(t)
        busy = False
        for number, buffer in enumerate(self.buffers, 1):
            if buffer.state == INACTIVE:
                buffer.state = ACTIVE
                return number
            busy = busy or buffer.state in (COMMITTING, DISCARDING)
        if busy:
            self.busy_drops += 1
        else:
            self.unavailable_drops += 1
        return 0

    def _buffer(self, which: int) -> Buffer | None:
        """The buffer an ID names; None for 0. An ID past nspec is an illegal operation (CPU_DTRACE_ILLOP)."""
        which &= 0xFFFFFFFF  # dtrace_specid_t
        if which == 0:
            return None
        if which > len(self.buffers):
            raise DRuntimeError("illegal operation", DTRACEFLT_ILLOP)
        return self.buffers[which - 1]

    def speculate(self, which: int) -> None:
        self._buffer(which)  # an illegal ID is an error at once
        self.target = which & 0xFFFFFFFF

    def keep(self, st, mark: int, header_was: bool) -> None:
        """After a speculative clause has run: move what it recorded into its speculative buffer, or drop it."""
        records = st.out[mark:]
        del st.out[mark:]
        st.header_printed = header_was
        target, self.target = self.target, None
        buffer = self._buffer(target) if target else None
        if buffer is not None and buffer.state == ACTIVE:
            buffer.records.extend(records)

    def commit(self, st, which: int, t: int) -> None:
        buffer = self._buffer(which)
        if buffer is None or buffer.state != ACTIVE:
            return
        st.out.extend(buffer.records)
        buffer.state, buffer.records, buffer.free_at = COMMITTING, [], self._free_at(t)

    def discard(self, which: int, t: int) -> None:
        buffer = self._buffer(which)
        if buffer is None or buffer.state != ACTIVE:
            return
        buffer.state, buffer.records, buffer.free_at = DISCARDING, [], self._free_at(t)

    def drop_messages(self) -> list[str]:
        messages = []
        for n, why in ((self.busy_drops, "available buffer(s) still busy"),
                       (self.unavailable_drops, "no speculative buffer space available")):  # fmt: skip
            if n:
                messages.append(f"dtrace: {n} failed speculation{'' if n == 1 else 's'} ({why})")
        return messages


# --- compiling ----------------------------------------------------------------------------------------------


def _spec_id(compiler, node: Tree, name: str, args: list[Tree]) -> Callable[[Firing], int]:
    if len(args) != 1:
        raise CompileError(f"{name}( ) prototype mismatch: {len(args)} args passed, 1 expected", *_where(node))
    expr = compiler._expr(args[0])
    if expr.type.kind != "int":
        raise CompileError(f"{name}( ) argument #1 is incompatible with prototype", *_where(args[0]))
    return expr.fn


def _where(node: Tree) -> tuple[int | None, int | None]:
    return getattr(node.meta, "line", None), getattr(node.meta, "column", None)


def uses(compiler) -> None:
    """Give the program's sessions their speculative buffers (once per program)."""
    if "speculations" not in compiler.starters:
        options = compiler.parsed.options
        compiler.starters["speculations"] = lambda st: setattr(st, "speculations", Speculations(options))


def compile_speculation(compiler, node: Tree, args: list[Tree]):
    if args:
        raise CompileError(f"speculation( ) prototype mismatch: {len(args)} args passed, 0 expected", *_where(node))
    uses(compiler)
    state = compiler.state_ref
    return Expr(lambda f: state[0].speculations.speculation(f.t), INT)


def compile_speculate(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    which = _spec_id(compiler, node, "speculate", args)
    uses(compiler)
    state = compiler.state_ref
    return lambda f: state[0].speculations.speculate(which(f))


def compile_commit(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    which = _spec_id(compiler, node, "commit", args)
    uses(compiler)
    state = compiler.state_ref

    def commit(f: Firing) -> None:
        st = state[0]
        st.speculations.commit(st, which(f), f.t)

    return commit


def compile_discard(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    which = _spec_id(compiler, node, "discard", args)
    uses(compiler)
    state = compiler.state_ref
    return lambda f: state[0].speculations.discard(which(f), f.t)


def check_order(kinds: list[tuple[str, Tree]]) -> None:
    """dt_stmt_append's checks over a clause's actions in order: (kind, node) with kind one of speculate, commit,
    discard, aggregate, destructive, exit, record, or expression (a statement that records nothing)."""
    commit = speculate = datarec = False
    for kind, node in kinds:
        where = _where(node)
        if kind == "commit":
            if commit:
                raise CompileError("commit( ) may not follow commit( )", *where)
            if datarec:
                raise CompileError("commit( ) may not follow data-recording action(s)", *where)
            commit = True
            continue
        if kind == "speculate":
            if speculate:
                raise CompileError("speculate( ) may not follow speculate( )", *where)
            if commit:
                raise CompileError("speculate( ) may not follow commit( )", *where)
            if datarec:
                raise CompileError("speculate( ) may not follow data-recording action(s)", *where)
            speculate = True
            continue
        if kind == "aggregate":
            if commit:
                raise CompileError("aggregating actions may not follow commit( )", *where)
            if speculate:
                raise CompileError("aggregating actions may not follow speculate( )", *where)
            datarec = True
            continue
        if speculate and kind == "destructive":
            raise CompileError("destructive actions may not follow speculate( )", *where)
        if speculate and kind == "exit":
            raise CompileError("exit( ) may not follow speculate( )", *where)
        if kind in ("destructive", "discard", "expression"):
            continue
        if commit:
            raise CompileError("data-recording actions may not follow commit( )", *where)
        if not speculate:
            datarec = True
