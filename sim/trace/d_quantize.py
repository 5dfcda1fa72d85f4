"""The parameters of lquantize() and llquantize(), checked when a program compiles, as libdtrace checks them.

lquantize(value, base, limit[, step[, increment]]) is checked as dt_compile_agg checks it (D_LQUANT_*): constant
32-bit base and limit, a positive 16-bit step, and from one to 65,535 levels of `step` from base up (the last
may end short of limit); an aggregation's later lquantize() calls must repeat its first's parameters.

llquantize(value, factor, low, high, nsteps[, increment]) (d_llquantize.py makes its histograms) is checked in
dt_cc.c's words (D_LLQUANT_*), and must have the parameters of the aggregation's first llquantize()
(D_LLQUANT_*MATCH).
"""

from __future__ import annotations

from lark import Tree

from sim.trace.d_llquantize import Params
from sim.trace.d_parser import CompileError

UINT16_MAX = 0xFFFF
UINT64 = 1 << 64
ARGUMENTS = ("factor", "low magnitude", "high magnitude", "linear steps per magnitude")


def _where(node: Tree) -> tuple[int | None, int | None]:
    return getattr(node.meta, "line", None), getattr(node.meta, "column", None)


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _constant(compiler, arg: Tree) -> int | None:
    expr = compiler._expr(arg)
    return int(expr.const) if expr.is_const and expr.type.is_int else None


def lquantize_parameters(compiler, call: Tree, args: list[Tree]) -> tuple[int, int, int]:
    """(base, step, levels) of lquantize(value, base, limit[, step[, increment]])."""
    bounds = []
    for number, arg in enumerate(args[1:3], 1):
        value = _constant(compiler, arg)
        if value is None:
            raise CompileError(f"lquantize( ) argument #{number} must be an integer constant", *_where(arg))
        if not INT32_MIN <= value <= INT32_MAX:
            raise CompileError(f"lquantize( ) argument #{number} must be a 32-bit quantity", *_where(arg))
        bounds.append(value)
    base, limit = bounds
    step = 1
    if len(args) > 3:
        step = _constant(compiler, args[3])
        if step is None or step <= 0:
            raise CompileError(
                "lquantize( ) argument #3 must be a non-zero positive integer constant", *_where(args[3])
            )
        if step > UINT16_MAX:
            raise CompileError("lquantize( ) argument #3 must be a 16-bit quantity", *_where(args[3]))
    where = _where(call)
    if limit < base:
        raise CompileError("lquantize( ) base (argument #1) must be less than limit (argument #2)", *where)
    levels = (limit - base) // step
    if levels == 0:
        raise CompileError(
            "lquantize( ) step (argument #3) too large: must have at least one quantization level", *where
        )
    if levels > UINT16_MAX:
        raise CompileError(
            "lquantize( ) step (argument #3) too small: number of quantization levels must be a 16-bit quantity",
            *where,
        )
    return base, step, levels


def check_lquantize_match(previous, base: int, step: int, levels: int, call: Tree) -> None:
    """Later lquantize() calls of an aggregation repeat its first's base, limit and step (D_LQUANT_MATCH*)."""
    old_limit, new_limit = previous.base + previous.levels * previous.step, base + levels * step
    for number, word, old, new in ((1, "base", previous.base, base), (2, "limit", old_limit, new_limit),
                                   (3, "step", previous.step, step)):  # fmt: skip
        if old != new:
            raise CompileError(
                f"lquantize( ) {word} (argument #{number}) doesn't match previous declaration: expected {old}, "
                f"found {new}",
                *_where(call),
            )


def llquantize_parameters(compiler, call: Tree, args: list[Tree]) -> Params:
    """The four constant parameters (args[1:5]), checked as dt_compile_agg checks them."""
    values = []
    for number, (arg, word) in enumerate(zip(args[1:5], ARGUMENTS, strict=True), 1):
        expr = compiler._expr(arg)
        if not expr.is_const or not expr.type.is_int:
            raise CompileError(f"llquantize( ) argument #{number} ({word}) must be an integer constant", *_where(arg))
        if int(expr.const) % UINT64 > UINT16_MAX:  # (uint64_t)dn_value: a negative one is huge
            raise CompileError(
                f"llquantize( ) argument #{number} ({word}) must be an unsigned 16-bit quantity", *_where(arg)
            )
        values.append(int(expr.const))
    p = Params(*values)
    where = _where(call)
    if p.factor < 2:
        raise CompileError("llquantize( ) factor (argument #1) must be two or more", *where)
    if p.low >= p.high:
        raise CompileError(
            "llquantize( ) high magnitude (argument #3) must be greater than low magnitude (argument #2)", *where
        )
    if p.nsteps < p.factor:
        raise CompileError(
            "llquantize( ) factor (argument #1) must be less than or equal to the number of linear steps per "
            "magnitude (argument #4)",
            *where,
        )
    power = p.factor
    while power < p.nsteps:
        power *= p.factor
    if p.nsteps % p.factor or power % p.nsteps:
        raise CompileError(
            "llquantize( ) factor (argument #1) must evenly divide the number of steps per magnitude (argument #4), "
            "and the number of steps per magnitude must evenly divide a power of the factor",
            *where,
        )
    order = 1
    for _ in range(p.high):
        if (order * p.factor) % UINT64 <= order:  # uint64_t arithmetic: the product wrapped
            raise CompileError(
                f"llquantize( ) factor ({p.factor}) raised to power of high magnitude ({p.high}) plus 1 "
                "overflows 64-bits",
                *where,
            )
        order *= p.factor
    return p


def check_llquantize_match(previous: Params, current: Params, call: Tree) -> None:
    """An aggregation's llquantize() parameters must be those of its first: the first that differs is named."""
    for number, (word, old, new) in enumerate(zip(ARGUMENTS, previous, current, strict=True), 1):
        if old != new:
            raise CompileError(
                f"llquantize( ) {word} (argument #{number}) doesn't match previous declaration: expected {old}, "
                f"found {new}",
                *_where(call),
            )
