"""The D interpreter: a parsed program is compiled once into Python closures, then run per probe firing.

Compiling checks what libdtrace's compiler checks (dt_parser.c's cooking): that every probe description matches
a probe, that variables are known and operands have compatible types, that aggregating functions get the
arguments they take, and it words the errors as libdtrace does. Running follows DTrace's semantics:

- the clauses enabled on a probe run in program order at each firing, each behind its own predicate;
- `timestamp` is read once per firing, so every use within one firing (across clauses) is equal;
- globals are shared; `self->x` is per thread and reads as 0 (or "") until assigned; `this->x` lives for one
  firing; assigning 0 to a thread-local or an associative-array element frees it;
- a clause whose actions record data (trace, printf, printa, stack, exit, ...) or that has no statements at
  all produces a record: without -q it is printed after the "CPU ID FUNCTION:NAME" prefix; clauses that only
  assign or aggregate print nothing;
- a runtime error (division by zero) abandons that clause's record, reports "error on enabled probe", and
  tracing goes on.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

from sim.trace import d_decls, d_kernel, d_quantize, d_typed
from sim.trace.d_memory import DRuntimeError, Layout, Memory
from sim.trace.d_output import (
    AGGREGATING_FUNCTIONS,
    INT,
    INT64,
    INT_CONVERSIONS,
    STACK,
    STRING,
    TYPES,
    UINT64,
    Aggregation,
    Buckets,
    DType,
    Format,
    format_stack,
    format_trace,
    header,
    promote,
    quantize_bucket,
    record_prefix,
)
from sim.trace.d_parser import CompileError, ParsedProgram
from sim.trace.d_system import DTRACEFLT_DIVZERO, DTRACEFLT_ILLOP, DTRACEFLT_UNKNOWN
from sim.trace.providers import STACK_FRAMES, Firing, Probe, ProbeCatalog, Stopped, split_description

MAX_AGGREGATION_KEYS = 100_000  # distinct keys over all aggregations; more are dropped and counted
# What all aggregations may hold, estimated: a key costs its entry and accumulator, a histogram each non-empty
# bucket. Keys or buckets past it are dropped and counted, as keys past MAX_AGGREGATION_KEYS are.
MAX_AGGREGATION_BYTES = 32 << 20
KEY_BYTES = 200  # a dict entry, its key tuple and a small accumulator (strings add their length)
BUCKET_BYTES = 100  # a histogram bucket: a dict entry and two ints
MAX_DYNAMIC_VARIABLES = 100_000  # elements of associative arrays; more are dropped and counted
MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # what one D program may print before tracing is stopped
MAX_ERROR_MESSAGES = 20  # runtime errors reported one by one; the rest are counted
STACK_COST = 2 * STACK_FRAMES  # what a stack() counts against the evaluation budget, in operations
SORTED_ENTRY_COST = 100  # what printa() and trunc() count for each entry they sort: a sort key of ~14 us
TUPLE_REGISTERS = 8  # DIF_DTR_NREGS: the keys an associative array's tuple may have
ERROR_PROBE_ID = 3  # dtrace:::ERROR (providers._static_probes)
WALLCLOCK_AT_BOOT_NS = 1_485_907_200 * 1_000_000_000  # walltimestamp at the run's time 0: 2017-02-01 00:00 UTC

# Built-in variables (dt_open.c's _dtrace_globals): type and how a firing provides the value.
BUILTINS: dict[str, tuple[DType, Callable[[Firing], object]]] = {
    "timestamp": (UINT64, lambda f: f.t),
    "vtimestamp": (UINT64, lambda f: f.vtime()),
    "walltimestamp": (INT64, lambda f: WALLCLOCK_AT_BOOT_NS + f.t),
    "execname": (STRING, lambda f: f.execname),
    "probeprov": (STRING, lambda f: f.probe.provider),
    "probemod": (STRING, lambda f: f.probe.module),
    "probefunc": (STRING, lambda f: f.probe.function),
    "probename": (STRING, lambda f: f.probe.name),
    "pid": (TYPES["pid_t"], lambda f: f.pid),
    "tid": (TYPES["id_t"], lambda f: f.tid),
    "cpu": (TYPES["processorid_t"], lambda f: 0),
    "errno": (INT, lambda f: f.errno),
    "id": (TYPES["uint_t"], lambda f: f.probe.id),
}
for _n in range(10):
    BUILTINS[f"arg{_n}"] = (INT64, (lambda n: lambda f: f.arg(n))(_n))

ACTIONS = {"trace", "printf", "printa", "stack", "exit", "clear", "trunc"}
# D functions this interpreter does not provide (the simulator records no user stacks, memory or strings
# beyond what its events carry); naming one gets a clear message rather than "undefined function".
UNSUPPORTED_FUNCTIONS = {
    "ustack", "jstack", "printm", "print", "system", "copyout", "copyoutstr", "stringof",
    "substr", "index", "rindex", "ftruncate", "freopen", "sym", "func", "mod",
    "usym", "ufunc", "umod", "uaddr", "progenyof", "mutex_owned", "alloca", "bcopy", "inet_ntoa", "tracemem",
    "htons", "ntohs", "htonl", "ntohl", "getmajor", "getminor", "ddi_pathname", "cleanpath",
}  # fmt: skip


@dataclass
class Expr:
    fn: Callable[[Firing], object]
    type: DType
    const: object = None  # the value, when known at compile time

    @property
    def is_const(self) -> bool:
        return self.const is not None


@dataclass
class Clause:
    index: int
    line: int
    descriptions: list[str]
    probes: list[Probe]
    predicate: Callable[[Firing], object] | None
    statements: list[Callable[[Firing], None]]
    records: bool
    cost: int = 1  # operations one run of the clause counts against the evaluation budget: its tree's nodes
    speculative: bool = False  # it calls speculate(): its record goes to a speculative buffer (d_speculation)


@dataclass
class TraceState:
    """Everything a running program keeps: variables, aggregations and what it has printed."""

    quiet: bool
    aggsortkey: bool = False
    aggsortrev: bool = False
    globals: dict[str, object] = field(default_factory=dict)
    arrays: dict[str, dict[tuple, object]] = field(default_factory=dict)
    tls_by_tid: dict[int, dict[str, object]] = field(default_factory=dict)
    tls: dict[str, object] = field(default_factory=dict)
    this: dict[str, object] = field(default_factory=dict)
    out: list[str] = field(default_factory=list)
    out_bytes: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    header_printed: bool = False
    stopping: bool = False
    exit_status: int = 0
    aggregation_keys: int = 0
    aggregation_bytes: int = 0
    aggregation_drops: int = 0
    aggregation_memory_drops: int = 0
    dynamic_drops: int = 0
    output_truncated: bool = False
    firings: int = 0
    ops: int = 0  # operations evaluated so far: Clause.cost per clause run, and what actions walk or sort
    ops_budget: int | None = None  # None: no limit
    budget_spent: bool = False
    memory: Memory | None = None  # the program's typed objects (d_memory.py)
    speculations: Any = None  # d_speculation.Speculations, when the program speculates
    options: dict[str, int | str] = field(default_factory=dict)  # the program's options; setopt() changes them
    address_spaces: Any = None  # a live run's processes' user memory, which copyin() reads (d_copyin.py)


class Program:
    """A compiled D program: clauses by probe, its aggregations, and how to run them on firings.

    A Program holds the state of one tracing session (start() resets it): it may be traced again, one session
    at a time (CompiledScript.session), as each result keeps copies of the aggregations.
    """

    def __init__(
        self,
        clauses: list[Clause],
        aggregations: dict[str, Aggregation],
        options: dict[str, str],
        uses_self: bool,
        uses_this: bool,
        globals_init: dict[str, object],
        arrays: list[str],
    ) -> None:
        self.clauses = clauses
        self.arrays = arrays
        self.aggregations = aggregations
        self.options = options
        self.uses_self = uses_self
        self.uses_this = uses_this
        self.globals_init = globals_init
        self.by_probe: dict[int, tuple[Clause, ...]] = {}
        for clause in clauses:
            for probe in clause.probes:
                self.by_probe[probe.id] = (*self.by_probe.get(probe.id, ()), clause)
        self._epids = {(c.index, p.id): n for n, (c, p) in enumerate(((c, p) for c in clauses for p in c.probes), 1)}
        self.state: TraceState | None = None
        self._state_ref: list[TraceState] = []
        self.layout = Layout()
        self.fbt_arguments: frozenset[str] = frozenset()
        self.starters: list[Callable[[TraceState], None]] = []  # what library features set up in a new session

    @property
    def probes(self) -> list[Probe]:
        seen: dict[int, Probe] = {}
        for clause in self.clauses:
            for probe in clause.probes:
                seen.setdefault(probe.id, probe)
        return list(seen.values())

    @property
    def matched(self) -> int:
        """What dtrace reports as "matched N probes": every (clause, probe) enabling."""
        return sum(len(c.probes) for c in self.clauses)

    def start(self, quiet: bool, ops_budget: int | None = None) -> TraceState:
        """A new session's state; `ops_budget` bounds its evaluation (None: no limit)."""
        state = TraceState(
            quiet=quiet or "quiet" in self.options,
            aggsortkey="aggsortkey" in self.options,
            aggsortrev="aggsortrev" in self.options,
            ops_budget=ops_budget,
        )
        state.options = dict(self.options)
        state.globals.update(self.globals_init)
        state.memory = Memory(self.layout)
        state.arrays = {name: {} for name in self.arrays}
        for starter in self.starters:
            starter(state)
        for aggregation in self.aggregations.values():
            aggregation.data.clear()
            aggregation.printed = False
            aggregation.normal = 1
        self.state = state
        self._state_ref[:] = [state]
        return state

    def release(self) -> None:
        """Let go of the last session's data (its result keeps copies): a kept program holds only its code."""
        for aggregation in self.aggregations.values():
            aggregation.data.clear()  # cleared, not replaced: the compiled updaters hold this dict
        self.state = None
        self._state_ref[:] = []

    def fire(self, f: Firing) -> None:
        """Run the clauses enabled on f.probe, in program order. Raises Stopped once exit() has been called."""
        clauses = self.by_probe.get(f.probe.id)
        if clauses is None:
            return
        st = self._state_ref[0]
        st.firings += 1
        if self.uses_self:
            tls = st.tls_by_tid.get(f.tid)
            if tls is None:
                tls = st.tls_by_tid[f.tid] = {}
            st.tls = tls
        if self.uses_this:
            st.this = {}
        for clause in clauses:
            self._run(clause, f, st)
        if st.ops_budget is not None and st.ops > st.ops_budget:
            st.budget_spent = st.stopping = True
        if st.stopping:
            raise Stopped()

    def _run(self, clause: Clause, f: Firing, st: TraceState) -> None:
        out = st.out
        mark, header_was = len(out), st.header_printed
        n = 0  # the statement running: 0 is the predicate
        st.ops += clause.cost
        try:
            if clause.predicate is not None and not clause.predicate(f):
                return
            if clause.records and not st.quiet:
                if not st.header_printed:
                    out.append(header())
                    st.header_printed = True
                out.append(record_prefix(f.probe))
            for statement in clause.statements:
                n += 1
                statement(f)
        except (DRuntimeError, ArithmeticError, ValueError, TypeError) as error:
            del out[mark:]
            st.header_printed = header_was
            what = str(error) if isinstance(error, DRuntimeError) else f"invalid value ({error})"
            fault = error if isinstance(error, DRuntimeError) else DRuntimeError(what, DTRACEFLT_ILLOP)
            self._error(st, clause, f, f"{what} in {f'action #{n}' if n else 'predicate'}", fault, n)
            return
        if clause.speculative:
            st.speculations.keep(st, mark, header_was)
            return
        if clause.records:
            if not st.quiet:
                out.append("\n")
            st.out_bytes += sum(len(text) for text in out[mark:])
            if st.out_bytes > MAX_OUTPUT_BYTES:
                self._truncate(st)

    def _error(self, st: TraceState, clause: Clause, f: Firing, message: str, fault=None, action: int = 0) -> None:
        st.error_count += 1
        epid = self._epids.get((clause.index, f.probe.id), 0)
        error_clauses = self.by_probe.get(ERROR_PROBE_ID, ())
        if error_clauses and f.probe.id != ERROR_PROBE_ID:
            self._fire_error(st, error_clauses, f, epid, fault, action)
        if st.error_count <= MAX_ERROR_MESSAGES:
            st.errors.append(
                f"dtrace: error on enabled probe ID {epid} (ID {f.probe.id}: {f.probe.description}): {message}"
            )

    def _fire_error(self, st: TraceState, clauses: tuple[Clause, ...], f: Firing, epid: int, fault, action) -> None:
        """dtrace:::ERROR, fired at once in the faulting probe's context (dtrace_probe_error): arg1 is the
        faulting enabling's ID, arg2 the action, arg4 the fault (DTRACEFLT_*), arg5 its address; this->variables
        are the ERROR clauses' own."""
        error = Firing()
        error.probe, error.t, error.pid, error.tid, error.execname = clauses[0].probes[0], f.t, f.pid, f.tid, f.execname
        code, address = (fault.fault, fault.address) if fault is not None else (DTRACEFLT_UNKNOWN, 0)
        error.args = (0, epid, action, -1, code, address)
        this, st.this = st.this, {}
        for clause in clauses:
            self._run(clause, error, st)
        st.this = this

    def _truncate(self, st: TraceState) -> None:
        st.output_truncated = True
        st.stopping = True
        text = "".join(st.out)[:MAX_OUTPUT_BYTES]
        st.out[:] = [text]
        st.out_bytes = len(text)

    def finish(self, st: TraceState) -> None:
        """What dtrace does once tracing has stopped: a newline, then every aggregation no printa() printed."""
        if st.output_truncated:
            return
        st.out.append("\n")
        for aggregation in sorted(self.aggregations.values(), key=lambda a: a.varid):
            if aggregation.printed or not aggregation.data:
                continue
            text_size = sum(len(t) for t in st.out)
            for key, datum in aggregation.sorted_entries(st.aggsortkey, st.aggsortrev):
                entry = aggregation.render_entry(key, datum)
                st.out.append(entry)
                text_size += len(entry)
                if text_size > MAX_OUTPUT_BYTES:  # checked at each entry: a histogram may print 65,537 rows
                    self._truncate(st)
                    return


# --- the compiler -------------------------------------------------------------------------------------------


def compile_program(parsed: ParsedProgram, catalog: ProbeCatalog) -> Program:
    return _Compiler(parsed, catalog).compile()


def _position(node: Tree | Token) -> tuple[int | None, int | None]:
    if isinstance(node, Token):
        return node.line, node.column
    meta = node.meta
    return getattr(meta, "line", None), getattr(meta, "column", None)


def _fail(node: Tree | Token | None, message: str) -> CompileError:
    line, column = _position(node) if node is not None else (None, None)
    return CompileError(message, line, column)


_RANGE = {}


def _bounds(dtype: DType) -> tuple[int, int]:
    bounds = _RANGE.get(dtype)
    if bounds is None:
        bits = dtype.size * 8
        bounds = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if dtype.signed else (0, (1 << bits) - 1)
        _RANGE[dtype] = bounds
    return bounds


def _wrapping(dtype: DType, fn: Callable[[Firing], int]) -> Callable[[Firing], int]:
    """fn's result kept in dtype's range, as C arithmetic wraps."""
    lo, hi = _bounds(dtype)
    wrap = dtype.wrap

    def wrapped(f: Firing) -> int:
        v = fn(f)
        return v if lo <= v <= hi else wrap(v)

    return wrapped


def _c_div(a: int, b: int) -> int:
    if b == 0:
        raise DRuntimeError("divide-by-zero", DTRACEFLT_DIVZERO)
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _c_mod(a: int, b: int) -> int:
    if b == 0:
        raise DRuntimeError("divide-by-zero", DTRACEFLT_DIVZERO)
    return a - b * _c_div(a, b)


def _entry_bytes(key: tuple, datum: object) -> int:
    """What an aggregation's entry counts against MAX_AGGREGATION_BYTES (datum None: the key alone)."""
    buckets = len(datum) if isinstance(datum, Buckets) else 0
    return KEY_BYTES + sum(len(part) for part in key if isinstance(part, str)) + BUCKET_BYTES * buckets


def _zero_of(dtype: DType) -> object:
    return "" if dtype.kind == "string" else 0


class _Compiler:
    def __init__(self, parsed: ParsedProgram, catalog: ProbeCatalog) -> None:
        self.parsed = parsed
        self.catalog = catalog
        self.globals: dict[str, DType] = {}
        self.arrays: dict[str, tuple[tuple[DType, ...], DType]] = {}
        self.tls: dict[str, DType] = {}
        self.tls_arrays: dict[str, tuple[tuple[str, ...], DType]] = {}  # self->x[k]: key kinds, value type
        self.locals: dict[str, DType] = {}
        self.aggregations: dict[str, Aggregation] = {}
        self.pending_printa: list[tuple[Tree, str, list, Format | None, str]] = []
        self.uses_self = False
        self.uses_this = False
        self.state_ref: list[TraceState] = []
        d_typed.attach(self)
        self.starters: dict[str, Callable[[TraceState], None]] = {}
        self.checks: list[Callable[[], None]] = []  # run once every aggregation is known (printa's keys)
        self.epids: dict[int, int] = {}  # the clause being compiled's: probe ID -> enabled probe ID
        self.enablings = 0
        # Subroutines and actions past this core, in modules of their own that build on Expr and the compiler
        from sim.trace import d_library

        self.library = d_library

    def compile(self) -> Program:
        d_decls.declare(self, self.parsed.declarations)
        self.library.predeclare(self)
        clauses = [self._clause(i, node) for i, node in enumerate(self.parsed.tree.children)]
        for node, name, slot, fmt, function in self.pending_printa:
            aggregation = self.aggregations.get(name)
            if aggregation is None:
                raise _fail(node, f"{function}( ) argument is an undefined aggregation: @{name}")
            if fmt is not None and len(fmt.conversions) > len(aggregation.key_types):
                raise _fail(
                    node,
                    f"printa( ) format has {len(fmt.conversions)} conversions for keys, but "
                    f"@{name} has {len(aggregation.key_types)} keys",
                )
            if fmt is not None:
                pairs = zip(fmt.conversions, aggregation.key_types, strict=False)
                for n, (conversion, dtype) in enumerate(pairs, 1):
                    self._check_conversion("printa", conversion, dtype, node, n + 1, n)
            slot.append(aggregation)
        for check in self.checks:
            check()
        globals_init = {name: _zero_of(t) for name, t in self.globals.items()}
        program = Program(
            clauses,
            self.aggregations,
            self.parsed.options,
            self.uses_self,
            self.uses_this,
            globals_init,
            list(self.arrays),
        )
        program._state_ref = self.state_ref
        program.layout = self.layout
        program.fbt_arguments = frozenset(self.fbt_arguments)  # functions whose entry arguments the run records
        program.starters = list(self.starters.values())
        return program

    # -- clauses --

    def _clause(self, index: int, node: Tree) -> Clause:
        probe_list = node.children[0]
        descriptions = [str(token) for token in probe_list.children]
        probes: dict[int, Probe] = {}  # by id: the clause's probes in order, each once
        for token in probe_list.children:
            try:
                matched = self.catalog.match(str(token))
            except ValueError as error:
                raise _fail(token, str(error)) from None
            if not matched:
                full = ":".join(split_description(str(token)))
                raise _fail(token, f"probe description {full} does not match any probes")
            for probe in matched:
                probes.setdefault(probe.id, probe)
        d_kernel.enter_clause(self, node, list(probes.values()))
        # The enabled probe IDs of this clause's probes, numbered as Program numbers them (epid)
        self.epids = {probe_id: self.enablings + n for n, probe_id in enumerate(probes, 1)}
        self.enablings += len(probes)
        self.locals = dict(self.this_declared)
        predicate = None
        statements: list[Callable[[Firing], None]] = []
        records = True
        if node.data == "clause":
            body = node.children[-1]
            if len(node.children) == 3:
                pred_node = node.children[1].children[1]  # SLASH expression EPRED
                expr = self._expr(pred_node)
                if expr.type.kind not in ("int",):
                    raise _fail(pred_node, "predicate result must be of scalar type")
                predicate = expr.fn
            present = [s for s in body.children if s is not None]
            records = not present or any(self._is_action(s) for s in present)
            statements = [self._statement(s) for s in present]
            self.library.check_clause(self, present)
        # stack() walks up to STACK_FRAMES frames: costed as the frames' worth of operations (measured: ~8 us).
        cost = sum(STACK_COST if self._callee_is(n, "stack") else 1 for n in node.iter_subtrees())
        clause = Clause(
            index, node.meta.line, descriptions, list(probes.values()), predicate, statements, records, cost
        )
        clause.speculative = any(self._callee_is(s, "speculate") for s in node.iter_subtrees())
        return clause

    def _is_action(self, node: Tree) -> bool:
        if node.data == "if_statement":  # it records if one of its branches does
            return any(self._is_action(n) for n in node.iter_subtrees() if n is not node)
        return node.data == "call" and (self._callee(node) in ACTIONS or self._callee(node) in self.library.ACTIONS)

    def _callee_is(self, node: Tree, name: str) -> bool:
        return node.data == "call" and self._callee(node) == name

    def _callee(self, node: Tree) -> str | None:
        target = node.children[0]
        if isinstance(target, Tree) and target.data == "ident":
            return str(target.children[0])
        return None

    # -- statements --

    def _statement(self, node: Tree) -> Callable[[Firing], None]:
        if node.data == "if_statement":
            return self.library.compile_if(self, node)
        if node.data == "call" and self._callee(node) in ACTIONS:
            return self._action(node)
        if node.data == "call" and self._callee(node) in self.library.ACTIONS:
            return self.library.ACTIONS[self._callee(node)](self, node, self._args(node))
        if node.data == "assign" and self._is_aggregation_target(node.children[0]):
            return self._aggregate(node)
        if node.data == "aggregation" or (node.data == "subscript" and self._is_aggregation_target(node)):
            name = self._aggregation_name(node if node.data == "aggregation" else node.children[0])
            raise _fail(node, f"expression has null effect: @{name}")
        return self._expr(node).fn  # evaluated for its side effects; an expression statement records nothing

    def _is_aggregation_target(self, node: Tree) -> bool:
        if isinstance(node, Tree) and node.data == "aggregation":
            return True
        return isinstance(node, Tree) and node.data == "subscript" and node.children[0].data == "aggregation"

    @staticmethod
    def _aggregation_name(node: Tree) -> str:
        return str(node.children[0])[1:] or "_"

    # -- aggregations --

    def _aggregate(self, node: Tree) -> Callable[[Firing], None]:
        target, op, value = node.children
        if str(op.children[0]) != "=":
            raise _fail(op, f"operator {op.children[0]} may not be applied to an aggregation")
        agg_node = target if target.data == "aggregation" else target.children[0]
        name = self._aggregation_name(agg_node)
        key_nodes = target.children[1].children if target.data == "subscript" else []
        if value.data != "call" or self._callee(value) not in AGGREGATING_FUNCTIONS:
            raise _fail(value, f"@{name} must be assigned the result of an aggregating function")
        function = self._callee(value)
        args = value.children[1].children if value.children[1] is not None else []
        keys = [self._key(k) for k in key_nodes]
        key_types = tuple(k.type for k in keys)
        aggregation = self._declare_aggregation(node, name, function, key_types, args, value)
        return self._updater(aggregation, self._tuple_fn(keys), args, value)

    def _key(self, node: Tree) -> Expr:
        if node.data == "call" and self._callee(node) == "stack":
            depth = self._stack_depth(node)
            return Expr(lambda f: f.stack(depth), STACK)
        expr = self._expr(node)
        if expr.type.kind not in ("int", "string"):
            raise _fail(node, f"aggregation key of type {expr.type.name} is not supported")
        return expr

    def _stack_depth(self, node: Tree) -> int:
        args = node.children[1].children if node.children[1] is not None else []
        if not args:
            return STACK_FRAMES
        if len(args) > 1:
            raise _fail(node, "stack( ) prototype mismatch: too many arguments")
        depth = self._expr(args[0])
        if not depth.is_const or not depth.type.is_int or depth.const <= 0:
            raise _fail(args[0], "stack( ) argument #1 must be a non-zero positive integral constant expression")
        return int(depth.const)

    def _declare_aggregation(self, node, name, function, key_types, args, value) -> Aggregation:
        base, step, levels = 0, 1, 0
        expected = {"count": (0, 0), "quantize": (1, 2), "lquantize": (3, 5), "llquantize": (5, 6)}.get(
            function, (1, 1)
        )
        if not expected[0] <= len(args) <= expected[1]:
            need = expected[0] if expected[0] == expected[1] else f"{expected[0]} to {expected[1]}"
            raise _fail(value, f"{function}( ) prototype mismatch: {len(args)} args passed, {need} expected")
        for n, arg in enumerate(args, 1):
            if self._expr(arg).type.kind != "int":
                raise _fail(arg, f"{function}( ) argument #{n} must be of scalar type")
        if function == "lquantize":
            base, step, levels = d_quantize.lquantize_parameters(self, value, args)
        llq = d_quantize.llquantize_parameters(self, value, args) if function == "llquantize" else None
        existing = self.aggregations.get(name)
        if existing is not None:
            if existing.function != function:
                raise _fail(
                    node,
                    f"aggregation redefined: @{name}: current: {function}( ), previous: "
                    f"{existing.function}( ) at line {existing.line}",
                )
            if existing.key_types != key_types:
                if len(existing.key_types) != len(key_types):
                    raise _fail(
                        node,
                        f"@{name}: {len(key_types)} keys given, but it was first used with "
                        f"{len(existing.key_types)} at line {existing.line}",
                    )
                for n, (old, new) in enumerate(zip(existing.key_types, key_types, strict=True), 1):
                    if old.kind != new.kind:
                        raise _fail(
                            node,
                            f"@{name} key #{n} is incompatible with prototype: "
                            f"{old.name} (line {existing.line}) vs {new.name}",
                        )
            if function == "lquantize":
                d_quantize.check_lquantize_match(existing, base, step, levels, value)
            if llq is not None:
                d_quantize.check_llquantize_match(existing.llq, llq, value)
            return existing
        line, _ = _position(node)
        aggregation = Aggregation(name, len(self.aggregations) + 1, function, key_types, line or 0, base, step, levels)
        aggregation.llq = llq
        self.aggregations[name] = aggregation
        return aggregation

    def _constant(self, node: Tree, function: str, n: int) -> int:
        expr = self._expr(node)
        if not expr.is_const or not expr.type.is_int:
            raise _fail(node, f"{function}( ) argument #{n} must be an integral constant expression")
        return int(expr.const)

    def _updater(self, agg: Aggregation, keyfn, args: list, value: Tree) -> Callable[[Firing], None]:
        data, function = agg.data, agg.function
        state = self.state_ref
        arg = self._expr(args[0]).fn if args and function != "count" else None
        incr = self._expr(args[-1]).fn if function == "quantize" and len(args) == 2 else None
        if (function, len(args)) in (("lquantize", 5), ("llquantize", 6)):
            incr = self._expr(args[-1]).fn

        def new_key(key: tuple) -> bool:
            st = state[0]
            if st.aggregation_keys >= MAX_AGGREGATION_KEYS:
                st.aggregation_drops += 1
                return False
            cost = _entry_bytes(key, None)
            if st.aggregation_bytes + cost > MAX_AGGREGATION_BYTES:
                st.aggregation_memory_drops += 1
                return False
            st.aggregation_keys += 1
            st.aggregation_bytes += cost
            data[key] = agg.zero()
            return True

        def slot(key: tuple) -> list | None:
            """The key's accumulator (avg/stddev/quantize keep a list), made on first use; None if dropped."""
            d = data.get(key)
            if d is None and new_key(key):
                d = data[key]
            return d

        if function == "count":

            def update(f: Firing) -> None:
                key = keyfn(f)
                v = data.get(key)
                if v is None:
                    if new_key(key):
                        data[key] = 1
                else:
                    data[key] = v + 1
        elif function == "sum":

            def update(f: Firing) -> None:
                key = keyfn(f)
                x = arg(f)
                v = data.get(key)
                if v is None:
                    if new_key(key):
                        data[key] = x
                else:
                    data[key] = v + x
        elif function in ("min", "max"):
            better = (lambda x, v: x < v) if function == "min" else (lambda x, v: x > v)

            def update(f: Firing) -> None:
                key = keyfn(f)
                x = arg(f)
                if key not in data and not new_key(key):
                    return
                if better(x, data[key]):
                    data[key] = x
        elif function in ("avg", "stddev"):

            def update(f: Firing) -> None:
                key = keyfn(f)  # the key, then the value: operands in order
                x = arg(f)
                d = slot(key)
                if d is None:
                    return
                d[0] += 1
                d[1] += x
                if len(d) == 3:
                    d[2] += x * x
        else:
            bucket = quantize_bucket if function == "quantize" else agg.histogram_bucket

            def update(f: Firing) -> None:
                key = keyfn(f)  # the key, then the value: operands in order
                x = arg(f)
                d = slot(key)
                if d is None:
                    return
                b = bucket(x)
                if b not in d:
                    st = state[0]
                    if st.aggregation_bytes + BUCKET_BYTES > MAX_AGGREGATION_BYTES:
                        st.aggregation_memory_drops += 1
                        return
                    st.aggregation_bytes += BUCKET_BYTES
                d[b] += incr(f) if incr is not None else 1

        return update

    # -- actions --

    def _args(self, node: Tree) -> list[Tree]:
        return list(node.children[1].children) if node.children[1] is not None else []

    def _action(self, node: Tree) -> Callable[[Firing], None]:
        name = self._callee(node)
        args = self._args(node)
        state = self.state_ref
        if name == "trace":
            if len(args) != 1:
                raise _fail(node, f"trace( ) prototype mismatch: {len(args)} args passed, 1 expected")
            if args[0].data == "call" and self._callee(args[0]) == "stack":
                depth = self._stack_depth(args[0])
                return lambda f: state[0].out.append(format_stack(f.stack(depth)))
            expr = d_typed.char_string(self, self._expr(args[0]), pointers=False)
            fn, dtype = expr.fn, expr.type
            if dtype.kind == "void":
                raise _fail(args[0], "trace( ) argument #1 must be of scalar, string or stack type")
            return lambda f: state[0].out.append(format_trace(fn(f), dtype, state[0].quiet))
        if name == "stack":
            depth = self._stack_depth(node)
            return lambda f: state[0].out.append(format_stack(f.stack(depth)))
        if name == "exit":
            if len(args) != 1:
                raise _fail(node, f"exit( ) prototype mismatch: {len(args)} args passed, 1 expected")
            expr = self._expr(args[0])
            if expr.type.kind != "int":
                raise _fail(args[0], "exit( ) argument #1 must be of integral type")
            fn = expr.fn

            def do_exit(f: Firing) -> None:
                st = state[0]
                if not st.stopping:  # the first exit() wins, as the consumer acts on the first exit record
                    st.exit_status = int(fn(f))
                st.stopping = True

            return do_exit
        if name == "printf":
            return self._printf(node, args)
        if name == "printa":
            return self.library.ACTIONS["printa"](self, node, args)
        return self._clear_or_trunc(node, name, args)

    def _format_string(self, node: Tree, function: str) -> Format:
        if node.data != "string":
            raise _fail(node, f"{function}( ) argument #1 must be a string constant (the format)")
        try:
            return Format.parse(self._string_value(node.children[0]))
        except ValueError as error:
            raise _fail(node, f"{function}( ) {error}") from None

    def _printf(self, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
        if not args:
            raise _fail(node, "printf( ) prototype mismatch: 0 args passed, at least 1 expected")
        fmt = self._format_string(args[0], "printf")
        conversions, slots = fmt.conversions, fmt.slots
        values = d_typed.printf_values(self, slots, [self._expr(a) for a in args[1:]])
        if any(p.aggregation for p in fmt.pieces if not isinstance(p, str)):
            raise _fail(args[0], "printf( ) format may not use %@: that conversion is for printa( )")
        if len(values) < len(slots):
            c, part = slots[len(values)]
            wanted = {"width": '"*"', "precision": '".*"', "value": "value"}[part]
            raise _fail(
                node,
                f"printf( ) prototype mismatch: conversion #{conversions.index(c) + 1} ({c.text}) is missing "
                f"a corresponding {wanted} argument",
            )
        if len(values) > len(slots):
            raise _fail(
                node, f"printf( ) prototype mismatch: only {len(slots)} arguments required by this format string"
            )
        for n, ((conversion, part), value) in enumerate(zip(slots, values, strict=True), 2):
            if part != "value" and value.type.kind != "int":
                raise _fail(
                    args[n - 1],
                    f"printf( ) argument #{n} is incompatible with conversion #{conversions.index(conversion) + 1} "
                    f"prototype:\n\tconversion: % {'*' if part == 'width' else '.*'} {conversion.letter}\n"
                    f"\t prototype: int\n\t  argument: {value.type.name}",
                )
            if part == "value":
                self._check_conversion("printf", conversion, value.type, args[n - 1], n, n - 1)
        fns = [(v.fn, v.type) for v in values]
        state = self.state_ref
        return lambda f: state[0].out.append(fmt.render([(fn(f), t) for fn, t in fns]))

    @staticmethod
    def _check_conversion(function: str, conversion, dtype: DType, node, argno: int, convno: int) -> None:
        letter = conversion.letter
        if letter == "k" or dtype.kind == "stack":
            if letter in "ks" and dtype.kind == "stack":
                return
            raise _fail(
                node,
                f"{function}( ) argument #{argno} is incompatible with conversion #{convno} prototype: "
                f"conversion {conversion.text} needs a stack, argument is of type {dtype.name}",
            )
        wanted = "string" if letter == "s" else "int"
        if dtype.kind != wanted:
            needs = "a string" if wanted == "string" else "an integer"
            raise _fail(
                node,
                f"{function}( ) argument #{argno} is incompatible with conversion #{convno} prototype: "
                f"conversion {conversion.text} needs {needs}, argument is of type {dtype.name}",
            )
        if letter not in INT_CONVERSIONS and wanted == "int" and letter not in "pYa":
            raise _fail(node, f"{function}( ) conversion {conversion.text} is not supported")

    def _clear_or_trunc(self, node: Tree, name: str, args: list[Tree]) -> Callable[[Firing], None]:
        limit = 2 if name == "trunc" else 1
        if not 1 <= len(args) <= limit or args[0].data != "aggregation":
            raise _fail(
                node,
                f"{name}( ) prototype mismatch: expected an @aggregation"
                + (" and an optional count" if name == "trunc" else ""),
            )
        agg_name = self._aggregation_name(args[0])
        keep = self._constant(args[1], name, 2) if len(args) == 2 else 0
        slot: list[Aggregation] = []
        self.pending_printa.append((args[0], agg_name, slot, None, name))
        state = self.state_ref

        def clear(f: Firing) -> None:
            agg = slot[0]
            st = state[0]
            st.ops += len(agg.data)
            for key, datum in agg.data.items():
                st.aggregation_bytes -= _entry_bytes(key, datum) - _entry_bytes(key, None)  # its buckets
                agg.data[key] = agg.zero()

        def trunc(f: Firing) -> None:
            agg = slot[0]
            st = state[0]
            st.ops += SORTED_ENTRY_COST * len(agg.data)
            entries = agg.sorted_entries(reverse=keep >= 0)
            survivors = {k for k, _ in entries[: abs(keep)]}
            for key in [k for k in agg.data if k not in survivors]:
                st.aggregation_bytes -= _entry_bytes(key, agg.data.pop(key))
                st.aggregation_keys -= 1

        return clear if name == "clear" else trunc

    # -- expressions --

    def _expr(self, node: Tree | Token) -> Expr:
        method = getattr(self, f"_e_{node.data}", None)
        if method is None:
            typed = d_typed.expression(self, node)
            if typed is not None:
                return typed
            raise _fail(node, f"{node.data} expressions are not supported by trapscope's D")
        return method(node)

    def _e_integer(self, node: Tree) -> Expr:
        text = str(node.children[0])
        digits = text.rstrip("uUlL")
        suffix = text[len(digits) :].lower()
        base = 16 if digits[:2].lower() == "0x" else 8 if digits.startswith("0") and len(digits) > 1 else 10
        if len(digits) > 24:  # more digits than any 64-bit constant has (octal's 22 and a leading 0)
            raise _fail(node, f"integer constant {text[:24]}... is too large")
        try:
            value = int(digits, base)
        except ValueError:
            raise _fail(node, f"invalid integer constant: {text}") from None
        if value >= 1 << 64:
            raise _fail(node, f"integer constant {text} is too large")
        if "u" in suffix:
            dtype = TYPES["uint_t"] if value < 1 << 32 and "l" not in suffix else UINT64
        elif value < 1 << 31 and "l" not in suffix:
            dtype = INT
        elif value < 1 << 63:
            dtype = INT64
        else:
            dtype = UINT64
        return Expr(lambda f: value, dtype, value)

    def _e_character(self, node: Tree) -> Expr:
        text = str(node.children[0])
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise _fail(node, f"invalid character constant {text}") from None
        if len(value) != 1:
            raise _fail(node, f"character constant {text} must hold one character")
        number = ord(value)
        return Expr(lambda f: number, INT, number)  # a character constant is an int, as in C (dt_lex.l)

    def _string_value(self, token: Token) -> str:
        try:
            return ast.literal_eval(str(token))
        except (ValueError, SyntaxError):
            raise _fail(token, f"invalid escape sequence in string {token}") from None

    def _e_string(self, node: Tree) -> Expr:
        value = self._string_value(node.children[0])
        return Expr(lambda f: value, STRING, value)

    def _e_ident(self, node: Tree) -> Expr:
        name = str(node.children[0])
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return Expr(builtin[1], builtin[0])
        if name in self.library.VARIABLES:
            return self.library.VARIABLES[name](self)
        typed = d_typed.ident(self, node, name)
        if typed is not None:
            return typed
        if name in self.globals:
            state = self.state_ref
            return Expr(lambda f: state[0].globals[name], self.globals[name])
        if name in ("self", "this"):
            raise _fail(node, f"{name} must be followed by -> and a variable name")
        if name in self.arrays:
            raise _fail(node, f"{name} is an associative array: index it, as {name}[key]")
        if name in (
            "args",
            "curthread",
            "curpsinfo",
            "curlwpsinfo",
            "uregs",
            "ppid",
            "uid",
            "gid",
            "curcpu",
            "ucaller",
            "caller",
            "stackdepth",
            "ustackdepth",
            "execargs",
        ):
            raise _fail(node, f"built-in variable {name} is not available in trapscope's D")
        raise _fail(node, f"failed to resolve {name}: Unknown variable name")

    def _e_aggregation(self, node: Tree) -> Expr:
        raise _fail(
            node, f"@{self._aggregation_name(node)}: an aggregation may not be used as a value; print it with printa( )"
        )

    def _e_member(self, node: Tree) -> Expr:
        typed = d_typed.arrow(self, node)
        if typed is not None:
            return typed
        scope, name = self._member(node)
        if scope == "self":
            dtype = self.tls.setdefault(name, INT64)
            zero = _zero_of(dtype)
            state = self.state_ref
            return Expr(lambda f: state[0].tls.get(name, zero), dtype)
        dtype = self.locals.setdefault(name, INT64)
        zero = _zero_of(dtype)
        state = self.state_ref
        return Expr(lambda f: state[0].this.get(name, zero), dtype)

    def _member(self, node: Tree) -> tuple[str, str]:
        base, field_token = node.children
        if isinstance(base, Tree) and base.data == "ident" and str(base.children[0]) in ("self", "this"):
            scope = str(base.children[0])
            if scope == "self":
                self.uses_self = True
            else:
                self.uses_this = True
            return scope, str(field_token)
        raise _fail(node, "-> may only follow self or this: trapscope's D has no pointers to kernel structures")

    def _e_subscript(self, node: Tree) -> Expr:
        base, arguments = node.children
        if isinstance(base, Tree) and base.data == "aggregation":
            return self._e_aggregation(base)
        if self.library.is_thread_local_array(self, base):
            get, _, dtype = self.library.thread_local_element(self, node, None)
            return Expr(get, dtype)
        typed = d_typed.subscript(self, node)
        if typed is not None:
            return typed
        if not (isinstance(base, Tree) and base.data == "ident"):
            raise _fail(node, "only associative arrays and args[] may be indexed")
        name = str(base.children[0])
        if name == "args":
            if len(arguments.children) != 1:
                raise _fail(node, "args[ ] takes one index")
            index = self._expr(arguments.children[0])
            if not index.is_const or not 0 <= int(index.const) <= 9:
                raise _fail(node, "args[ ] index must be a constant from 0 to 9")
            n = int(index.const)
            return Expr(lambda f: f.arg(n), INT64)
        keys = [self._expr(k) for k in arguments.children]
        key_types, value_type = self._array_signature(node, name, keys, None)
        keyfn = self._tuple_fn(keys)
        zero = _zero_of(value_type)
        state = self.state_ref
        return Expr(lambda f: state[0].arrays[name].get(keyfn(f), zero), value_type)

    def _array_signature(self, node, name: str, keys: list[Expr], value: DType | None):
        if name in self.globals or name in BUILTINS:
            raise _fail(node, f"{name} is a scalar variable, not an associative array")
        if len(keys) > TUPLE_REGISTERS:  # dt_cg_arglist: EDT_NOTUPREG, an error without a line
            raise CompileError("Insufficient tuple registers to generate code")
        key_types = tuple(k.type for k in keys)
        for key in keys:
            if key.type.kind not in ("int", "string"):
                raise _fail(node, f"associative array keys must be integers or strings, not {key.type.name}")
        signature = self.arrays.get(name)
        if signature is None:
            signature = self.arrays[name] = (key_types, value or INT64)
        elif len(signature[0]) != len(key_types) or any(
            a.kind != b.kind for a, b in zip(signature[0], key_types, strict=True)
        ):
            raise _fail(node, f"{name}[ ] is indexed with {len(key_types)} key(s) of other types than before")
        return signature

    @staticmethod
    def _tuple_fn(keys: list[Expr]) -> Callable[[Firing], tuple]:
        """A key tuple builder; the common short tuples are built without a generator (they are hot)."""
        fns = [k.fn for k in keys]
        if len(fns) == 0:
            return lambda f: ()
        if len(fns) == 1:
            k0 = fns[0]
            return lambda f: (k0(f),)
        if len(fns) == 2:
            k0, k1 = fns
            return lambda f: (k0(f), k1(f))
        if len(fns) == 3:
            k0, k1, k2 = fns
            return lambda f: (k0(f), k1(f), k2(f))
        return lambda f: tuple(k(f) for k in fns)

    def _e_call(self, node: Tree) -> Expr:
        name = self._callee(node)
        if name is None:
            raise _fail(node, "function designator is not of function type")
        typed = d_typed.call(self, node, name)
        if typed is not None:
            return typed
        if name in ACTIONS:
            raise _fail(node, f"{name}( ) is an action: it may only be used as a statement")
        if name in AGGREGATING_FUNCTIONS:
            raise _fail(node, f"{name}( ) is an aggregating function: assign it to an @aggregation")
        if name in self.library.SUBROUTINES:
            return self.library.SUBROUTINES[name](self, node, self._args(node))
        if name in self.library.ACTIONS:
            raise _fail(node, f"{name}( ) is an action: it may only be used as a statement")
        if name in UNSUPPORTED_FUNCTIONS:
            self.library.check_unsupported_call(self, node, name, self._args(node))
            raise _fail(node, f"{name}( ) is not supported by trapscope's D")
        raise _fail(node, f"undefined function name: {name}")

    def _e_cast(self, node: Tree) -> Expr:
        return d_typed.cast(self, node)

    def _e_unop(self, node: Tree) -> Expr:
        op, operand = str(node.children[0]), node.children[1]
        expr = self._expr(operand)
        fn = expr.fn
        if op == "!":
            if expr.type.kind != "int":
                raise _fail(node, "operator ! requires an operand of scalar type")
            return self._fold(Expr(lambda f: 0 if fn(f) else 1, INT), expr)
        if expr.type.kind != "int":
            kind = "integral" if op == "~" else "arithmetic"
            raise _fail(node, f"operator {op} requires an operand of {kind} type")
        dtype = promote(expr.type, expr.type)
        if op == "+":
            return Expr(fn, dtype, expr.const)
        if op == "-":
            return self._fold(Expr(_wrapping(dtype, lambda f: -fn(f)), dtype), expr)
        return self._fold(Expr(_wrapping(dtype, lambda f: ~fn(f)), dtype), expr)

    @staticmethod
    def _fold(result: Expr, *operands: Expr) -> Expr:
        """Evaluate an operator on constants at compile time (lquantize's bounds may be -10, 1 << 10, ...)."""
        if all(o.is_const for o in operands):
            try:
                value = result.fn(None)  # type: ignore[arg-type]
            except DRuntimeError:
                return result
            return Expr(lambda f: value, result.type, value)
        return result

    def _e_binop(self, node: Tree) -> Expr:
        left_node, op_token, right_node = node.children
        op = str(op_token)
        left, right = self._expr(left_node), self._expr(right_node)
        lt, rt = left.type, right.type
        lf, rf = left.fn, right.fn
        typed = d_typed.binop(self, op_token, op, left, right)
        if typed is not None:
            return typed
        if op in ("&&", "||", "^^"):
            if lt.kind != "int" or rt.kind != "int":
                raise _fail(op_token, f"operator {op} requires operands of scalar type")
            if op == "&&":
                fn = lambda f: 1 if lf(f) and rf(f) else 0  # noqa: E731
            elif op == "||":
                fn = lambda f: 1 if lf(f) or rf(f) else 0  # noqa: E731
            else:
                fn = lambda f: 1 if bool(lf(f)) != bool(rf(f)) else 0  # noqa: E731
            return self._fold(Expr(fn, INT), left, right)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if lt.kind != rt.kind or lt.kind not in ("int", "string"):
                raise _fail(op_token, f'operands have incompatible types: "{lt.name}" {op} "{rt.name}"')
            if right.is_const and not left.is_const:
                c = right.const
                compare = {
                    "==": lambda f: 1 if lf(f) == c else 0,
                    "!=": lambda f: 1 if lf(f) != c else 0,
                    "<": lambda f: 1 if lf(f) < c else 0,
                    "<=": lambda f: 1 if lf(f) <= c else 0,
                    ">": lambda f: 1 if lf(f) > c else 0,
                    ">=": lambda f: 1 if lf(f) >= c else 0,
                }[op]
                return Expr(compare, INT)
            compare = {
                "==": lambda f: 1 if lf(f) == rf(f) else 0,
                "!=": lambda f: 1 if lf(f) != rf(f) else 0,
                "<": lambda f: 1 if lf(f) < rf(f) else 0,
                "<=": lambda f: 1 if lf(f) <= rf(f) else 0,
                ">": lambda f: 1 if lf(f) > rf(f) else 0,
                ">=": lambda f: 1 if lf(f) >= rf(f) else 0,
            }[op]
            return self._fold(Expr(compare, INT), left, right)
        if op in ("+", "-") and (lt.kind != "int" or rt.kind != "int"):
            raise _fail(op_token, f'operands have incompatible types: "{lt.name}" {op} "{rt.name}"')
        if lt.kind != "int" or rt.kind != "int":
            kind = "arithmetic" if op in ("*", "/") else "integral"
            raise _fail(op_token, f"operator {op} requires operands of {kind} type")
        if op in ("/", "%") and right.is_const and right.const == 0:
            raise _fail(node, "expression contains division by zero")
        dtype = promote(lt, rt)
        if op in ("<<", ">>"):
            dtype = promote(lt, lt)
        return self._fold(Expr(self._arith(op, lf, rf, dtype), dtype), left, right)

    @staticmethod
    def _arith(op: str, lf, rf, dtype: DType) -> Callable[[Firing], int]:
        if op == "+":
            return _wrapping(dtype, lambda f: lf(f) + rf(f))
        if op == "-":
            return _wrapping(dtype, lambda f: lf(f) - rf(f))
        if op == "*":
            return _wrapping(dtype, lambda f: lf(f) * rf(f))
        if op == "/":
            return _wrapping(dtype, lambda f: _c_div(lf(f), rf(f)))
        if op == "%":
            return _wrapping(dtype, lambda f: _c_mod(lf(f), rf(f)))
        if op == "&":
            return _wrapping(dtype, lambda f: lf(f) & rf(f))
        if op == "|":
            return _wrapping(dtype, lambda f: lf(f) | rf(f))
        if op == "^":
            return _wrapping(dtype, lambda f: lf(f) ^ rf(f))
        if op == "<<":
            return _wrapping(dtype, lambda f: lf(f) << (rf(f) & 63))
        mask = (1 << (8 * dtype.size)) - 1
        if dtype.signed:
            return lambda f: lf(f) >> (rf(f) & 63)
        return lambda f: (lf(f) & mask) >> (rf(f) & 63)

    def _e_ternary(self, node: Tree) -> Expr:
        cond, yes, no = (self._expr(c) for c in node.children)
        if cond.type.kind != "int":
            raise _fail(node.children[0], "operator ?: test expression must be of scalar type")
        if yes.type.kind != no.type.kind or yes.type.kind not in ("int", "string"):
            raise _fail(node, f'operator ?: operands must have compatible types: "{yes.type.name}" : "{no.type.name}"')
        dtype = promote(yes.type, no.type) if yes.type.kind == "int" else STRING
        c, a, b = cond.fn, yes.fn, no.fn
        return self._fold(Expr(lambda f: a(f) if c(f) else b(f), dtype), cond, yes, no)

    def _e_comma(self, node: Tree) -> Expr:
        left, _, right = node.children
        a, b = self._expr(left).fn, self._expr(right)
        bfn = b.fn
        return Expr(lambda f: (a(f), bfn(f))[1], b.type)

    # -- assignment --

    def _e_assign(self, node: Tree) -> Expr:
        target, op_node, value_node = node.children
        op = str(op_node.children[0])
        if self._is_aggregation_target(target):
            raise _fail(node, "an aggregation assignment must be a statement of its own")
        value = d_typed.decayed(self._expr(value_node))
        if value.type.kind in ("void", "stack"):
            raise _fail(value_node, f"a value of type {value.type.name} may not be assigned to a variable")
        get, put, dtype = self._lvalue(target, value.type if op == "=" else None)
        vfn = value.fn
        if op == "=":
            if dtype.kind != value.type.kind:
                raise _fail(op_node, f'operands have incompatible types: "{dtype.name}" = "{value.type.name}"')
            if dtype.kind == "int" and dtype != value.type:
                vfn = _wrapping(dtype, vfn)

            def assign(f: Firing) -> object:
                v = vfn(f)
                put(f, v)
                return v

            return Expr(assign, dtype)
        binary = op[:-1]
        if dtype.kind != "int" or value.type.kind != "int":
            raise _fail(op_node, f'operands have incompatible types: "{dtype.name}" {op} "{value.type.name}"')
        combined = self._arith(binary, get, vfn, dtype)

        def update(f: Firing) -> object:
            v = combined(f)
            put(f, v)
            return v

        return Expr(update, dtype)

    def _e_preincdec(self, node: Tree) -> Expr:
        return self._incdec(node.children[1], str(node.children[0]), prefix=True)

    def _e_postincdec(self, node: Tree) -> Expr:
        return self._incdec(node.children[0], str(node.children[1]), prefix=False)

    def _incdec(self, target: Tree, op: str, prefix: bool) -> Expr:
        get, put, dtype = self._lvalue(target, None)
        if dtype.kind != "int":
            raise _fail(target, f"operator {op} requires operand of scalar type")
        delta = 1 if op == "++" else -1
        step = _wrapping(dtype, lambda f: get(f) + delta)

        def incdec(f: Firing) -> object:
            old = get(f)
            new = step(f)
            put(f, new)
            return new if prefix else old

        return Expr(incdec, dtype)

    def _lvalue(self, target: Tree, assigned: DType | None):
        """(getter, setter, type) of an assignable expression; `assigned` declares a new variable's type."""
        if (
            isinstance(target, Tree)
            and target.data == "subscript"
            and self.library.is_thread_local_array(self, target.children[0])
        ):
            return self.library.thread_local_element(self, target, assigned)
        typed = d_typed.lvalue(self, target, assigned)
        if typed is not None:
            return typed
        state = self.state_ref
        if isinstance(target, Tree) and target.data == "ident":
            name = str(target.children[0])
            if name in BUILTINS or name in ("self", "this"):
                raise _fail(target, f"operator = can only be applied to a writable variable ({name} is not one)")
            if name in self.arrays:
                raise _fail(target, f"{name} is an associative array: index it, as {name}[key]")
            if name not in self.globals:
                # A variable first met as the operand of ++, -- or a compound assignment is declared then, as an
                # int64_t (dt_xcook_ident creates it when the identifier is modified)
                self.globals[name] = assigned or INT64
            dtype = self.globals[name]

            def get(f: Firing) -> object:
                return state[0].globals[name]

            def put(f: Firing, v: object) -> None:
                state[0].globals[name] = v

            return get, put, dtype
        if isinstance(target, Tree) and target.data == "member":
            scope, name = self._member(target)
            table = self.tls if scope == "self" else self.locals
            if name not in table:
                table[name] = assigned or INT64
            dtype = table[name]
            zero = _zero_of(dtype)
            if scope == "self":

                def get(f: Firing) -> object:
                    return state[0].tls.get(name, zero)

                def put(f: Firing, v: object) -> None:
                    tls = state[0].tls
                    if v == zero:
                        tls.pop(name, None)  # storing 0 frees a thread-local, as in DTrace
                    else:
                        tls[name] = v
            else:

                def get(f: Firing) -> object:
                    return state[0].this.get(name, zero)

                def put(f: Firing, v: object) -> None:
                    state[0].this[name] = v

            return get, put, dtype
        if isinstance(target, Tree) and target.data == "subscript":
            base, arguments = target.children
            if isinstance(base, Tree) and base.data == "ident" and str(base.children[0]) != "args":
                name = str(base.children[0])
                keys = [self._expr(k) for k in arguments.children]
                key_types, dtype = self._array_signature(target, name, keys, assigned)
                keyfn = self._tuple_fn(keys)
                zero = _zero_of(dtype)

                def get(f: Firing) -> object:
                    return state[0].arrays[name].get(keyfn(f), zero)

                def put(f: Firing, v: object) -> None:
                    st = state[0]
                    array = st.arrays[name]
                    key = keyfn(f)
                    if v == zero:
                        array.pop(key, None)
                    elif key in array or len(array) < MAX_DYNAMIC_VARIABLES:
                        array[key] = v
                    else:
                        st.dynamic_drops += 1

                return get, put, dtype
        raise _fail(target, "operator = requires a modifiable lvalue as an operand")
