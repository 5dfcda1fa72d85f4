"""D's subroutines and actions past the interpreter's core (d_interp.py), each compiled by its own module.

SUBROUTINES compile a call used as a value (`toupper(s)`, `speculation()`) into an Expr; ACTIONS compile a call
used as a statement (`speculate(id)`, `normalize(@a, 10)`) into what runs at each firing. Both get the compiler,
the call's node and its argument nodes. check_clause applies the rules about the order of a clause's actions.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Tree

from sim.trace import d_aggactions, d_speculation, d_subroutines
from sim.trace.d_interp import BUILTINS, Expr
from sim.trace.d_output import AGGREGATING_FUNCTIONS, INT64, UINT
from sim.trace.d_parser import CompileError
from sim.trace.providers import Firing

SUBROUTINES: dict[str, Callable] = {
    "speculation": d_speculation.compile_speculation,
    **d_subroutines.SUBROUTINES,
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
