"""D's subroutines and actions past the interpreter's core (d_interp.py), each compiled by its own module.

SUBROUTINES compile a call used as a value (`toupper(s)`, `speculation()`) into an Expr; ACTIONS compile a call
used as a statement (`speculate(id)`, `normalize(@a, 10)`) into what runs at each firing. Both get the compiler,
the call's node and its argument nodes. check_clause applies the rules about the order of a clause's actions.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Tree

from sim.trace import d_aggactions, d_speculation, d_subroutines
from sim.trace.d_interp import BUILTINS
from sim.trace.d_output import AGGREGATING_FUNCTIONS, INT64

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
