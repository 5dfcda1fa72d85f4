"""D's subroutines and actions past the interpreter's core (d_interp.py), each compiled by its own module.

SUBROUTINES compile a call used as a value (`toupper(s)`, `speculation()`) into an Expr; ACTIONS compile a call
used as a statement (`speculate(id)`, `normalize(@a, 10)`) into what runs at each firing. Both get the compiler,
the call's node and its argument nodes. check_clause applies the rules about the order of a clause's actions.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Tree

from sim.trace import d_aggactions, d_copyin, d_speculation, d_subroutines
from sim.trace.d_interp import BUILTINS, MAX_DYNAMIC_VARIABLES, TUPLE_REGISTERS, Expr
from sim.trace.d_output import AGGREGATING_FUNCTIONS, INT64, UINT
from sim.trace.d_parser import CompileError
from sim.trace.providers import Firing

SUBROUTINES: dict[str, Callable] = {
    "speculation": d_speculation.compile_speculation,
    **d_subroutines.SUBROUTINES,
    **d_copyin.SUBROUTINES,
}
ACTIONS: dict[str, Callable] = {
    "speculate": d_speculation.compile_speculate,
    "commit": d_speculation.compile_commit,
    "discard": d_speculation.compile_discard,
    **d_aggactions.ACTIONS,
    **d_subroutines.ACTIONS,
}


def _epid(compiler) -> Expr:
    """epid: the enabled probe ID of the clause and probe that fire (each clause's probes are numbered in turn)."""
    epids = compiler.epids
    return Expr(lambda f: epids.get(f.probe.id, 0), UINT)


def _stackdepth(compiler) -> Expr:
    """stackdepth: how many kernel frames stack() would print at the firing (none in BEGIN and END)."""
    return Expr(lambda f: len(f.stack(MAX_STACK_DEPTH)), UINT)


MAX_STACK_DEPTH = 256  # deeper than any modelled kernel path
VARIABLES: dict[str, Callable] = {"epid": _epid, "stackdepth": _stackdepth}


def is_thread_local_array(compiler, base) -> bool:
    """Is `base` self->NAME used as an associative array (self->x[k]), not a declared or scalar thread-local?"""
    if not (isinstance(base, Tree) and base.data == "member" and len(base.children) == 2):
        return False
    scope = base.children[0]
    if not (isinstance(scope, Tree) and scope.data == "ident" and str(scope.children[0]) == "self"):
        return False
    return str(base.children[1]) not in compiler.tls


def thread_local_element(compiler, target: Tree, assigned):
    """(getter, setter, type) of self->NAME[keys]: a thread-local associative array. Its elements live in the
    thread's own variables under (NAME, keys); each counts against the dynamic variable limit, and storing 0
    frees one, as for global associative arrays (a thread holds at most MAX_DYNAMIC_VARIABLES)."""
    member, arguments = target.children
    name = str(member.children[1])
    compiler.uses_self = True
    keys = [compiler._expr(k) for k in arguments.children]
    if len(keys) > TUPLE_REGISTERS:
        raise CompileError("Insufficient tuple registers to generate code")
    key_types = tuple(k.type.kind for k in keys)
    known = compiler.tls_arrays.get(name)
    if known is None:
        known = compiler.tls_arrays[name] = (key_types, assigned or INT64)
    elif known[0] != key_types:
        raise CompileError(f"self->{name}[ ] is indexed with other keys than before", *_where(target))
    dtype = known[1]
    zero = "" if dtype.kind == "string" else 0
    keyfn = compiler._tuple_fn(keys)
    state = compiler.state_ref

    def get(f: Firing) -> object:
        return state[0].tls.get((name, keyfn(f)), zero)

    def put(f: Firing, value: object) -> None:
        st = state[0]
        element = (name, keyfn(f))
        if value == zero:
            st.tls.pop(element, None)
        elif element in st.tls or len(st.tls) < MAX_DYNAMIC_VARIABLES:
            st.tls[element] = value
        else:
            st.dynamic_drops += 1

    return get, put, dtype


def compile_if(compiler, node: Tree) -> Callable[[Firing], None]:
    """if (condition) branch [else branch]: the branch the condition picks runs, statement by statement."""
    condition_node, then_branch, else_branch = node.children
    condition = compiler._expr(condition_node)
    if condition.type.kind != "int":
        raise CompileError("if-statement condition must be of scalar type", *_where(condition_node))
    test = condition.fn
    then = _branch(compiler, then_branch)
    otherwise = _branch(compiler, else_branch) if else_branch is not None else []

    def run(f: Firing) -> None:
        for statement in then if test(f) else otherwise:
            statement(f)

    return run


def _branch(compiler, branch: Tree) -> list[Callable[[Firing], None]]:
    (body,) = branch.children
    statements = body.children if body.data == "statement_list" else [body]
    present = [s for s in statements if s is not None]
    check_clause(compiler, present)
    return [compiler._statement(s) for s in present]


def _where(node: Tree) -> tuple[int | None, int | None]:
    return getattr(node.meta, "line", None), getattr(node.meta, "column", None)


def check_clause(compiler, statements: list[Tree]) -> None:
    """The clause's actions in order, as dt_stmt_append sees them (see d_speculation.check_order)."""
    d_speculation.check_order([(_kind(compiler, s), s) for s in statements])


def _kind(compiler, node: Tree) -> str:
    name = compiler._callee(node) if node.data == "call" else None
    if node.data == "assign" and compiler._is_aggregation_target(node.children[0]):
        value = node.children[2]
        if value.data == "call" and compiler._callee(value) in AGGREGATING_FUNCTIONS:
            return "aggregate"
    if name in ("speculate", "commit", "discard", "exit"):
        return name
    if name in d_speculation.DESTRUCTIVE:
        return "destructive"
    if name is not None and compiler._is_action(node):
        return "record"
    return "expression"


def predeclare(compiler) -> None:
    """Declare, as int64_t, each global the program only ever modifies with ++, -- or a compound assignment (never
    assigns with '='): libdtrace creates such a variable when it parses the operator, so a clause may read it
    before the clause that increments it (`BEGIN /x == 0/ { exit(x++); }`)."""
    modified, assigned = set(), set()
    for node in compiler.parsed.tree.iter_subtrees():
        if node.data == "preincdec":
            target = node.children[1]
        elif node.data in ("postincdec", "assign"):
            target = node.children[0]
        else:
            continue
        if not (isinstance(target, Tree) and target.data == "ident"):
            continue
        name = str(target.children[0])
        if node.data == "assign" and str(node.children[1].children[0]) == "=":
            assigned.add(name)
        else:
            modified.add(name)
    for name in sorted(modified - assigned):
        if name not in compiler.globals and name not in BUILTINS:
            compiler.globals[name] = INT64


def check_unsupported_call(compiler, node: Tree, name: str, args: list[Tree]) -> None:
    """The compile-time checks libdtrace makes of a call trapscope cannot run (dt_cc.c's dt_action_ustack for
    ustack() and jstack(): the simulator keeps no user stacks), so a bad call gets libdtrace's error, not ours."""
    if name not in ("ustack", "jstack"):
        return
    if len(args) > 2:
        raise CompileError(f"{name}( ) prototype mismatch: too many arguments", *_where(node))
    constants = [compiler._expr(arg) for arg in args]
    if constants and (not constants[0].is_const or not constants[0].type.is_int or int(constants[0].const) <= 0):
        raise CompileError(f"{name}( ) argument #1 must be a non-zero positive integer constant", *_where(args[0]))
    if len(constants) > 1 and (
        not constants[1].is_const or not constants[1].type.is_int or int(constants[1].const) < 0
    ):
        raise CompileError(f"{name}( ) argument #2 must be a positive integer constant", *_where(args[1]))
