"""Actions on aggregations past the core: printa() of one or several aggregations, normalize(), denormalize().

- printa(@a, @b, ...) (and printa("format", @a, @b, ...)) prints the aggregations joined on their keys, as
  libdtrace's dt_aggregate_walk_joined does: one row per key any of them has, a missing entry reading as zero
  (an empty histogram for quantize/lquantize); the format's %@ conversions take the aggregations' values in
  order. The aggregations must have the same key signature (D_PRINTA_AGGKEY, D_PRINTA_AGGPROTO).
- Rows sort as dt_aggregate_valcmp sorts them: by the aggregations' values, starting with the one at
  `aggsortpos`, then by the keys, starting with the one at `aggsortkeypos`; `aggsortkey` puts the keys first,
  `aggsortrev` reverses the order.
- normalize(@a, n) divides what @a prints by n from then on (the data are kept: denormalize(@a) undoes it), as
  the consumer does (dt_print_datum's `normal`); the sort still uses the data themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Tree

from sim.trace import d_options
from sim.trace.d_interp import MAX_OUTPUT_BYTES, SORTED_ENTRY_COST, DRuntimeError
from sim.trace.d_output import Aggregation, Format
from sim.trace.d_parser import CompileError
from sim.trace.d_system import DTRACEFLT_DIVZERO
from sim.trace.providers import Firing


def _where(node: Tree) -> tuple[int | None, int | None]:
    return getattr(node.meta, "line", None), getattr(node.meta, "column", None)


def _aggregation_args(compiler, node: Tree, name: str, args: list[Tree], first: int) -> None:
    for number, arg in enumerate(args, first):
        if arg.data != "aggregation":
            kind = compiler._expr(arg).type.name if arg.data != "aggregation" else "aggregation"
            raise CompileError(
                f"{name}( ) argument #{number} is incompatible with prototype:\n\tprototype: aggregation\n"
                f"\t argument: {kind}",
                *_where(node),
            )


def _resolve(compiler, args: list[Tree], fmt: Format | None, function: str) -> list[Aggregation]:
    """Slots filled with the named aggregations once the whole program has compiled (they may be declared by a
    later clause); the format is checked against the first's keys."""
    slot: list[Aggregation] = []
    for n, arg in enumerate(args):
        compiler.pending_printa.append((arg, compiler._aggregation_name(arg), slot, fmt if n == 0 else None, function))
    return slot


def compile_printa(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    fmt = None
    required = 1
    if args and args[0].data == "string":
        fmt = compiler._format_string(args[0], "printa")
        required = 2
    if len(args) < required:
        raise CompileError(f"printa( ) prototype mismatch: {len(args)} args passed, {required} expected", *_where(node))
    aggregation_nodes = args[required - 1 :]
    _aggregation_args(compiler, node, "printa", aggregation_nodes, required)
    slot = _resolve(compiler, aggregation_nodes, fmt, "printa")
    if len(aggregation_nodes) > 1:
        compiler.checks.append(lambda: _same_keys(slot, aggregation_nodes, node))
    state = compiler.state_ref

    def printa(f: Firing) -> None:
        st = state[0]
        sort_pos, key_pos = d_options.get(st.options, "aggsortpos"), d_options.get(st.options, "aggsortkeypos")
        rows = joined_rows(slot, st.aggsortkey, st.aggsortrev, sort_pos, key_pos)
        st.ops += SORTED_ENTRY_COST * len(rows) * len(slot)
        room = MAX_OUTPUT_BYTES - st.out_bytes  # past it the clause's record truncates the output: stop there
        if fmt is None:
            st.out.append("\n")
        for key, data in rows:
            text = render_row(slot, key, data, fmt)
            st.out.append(text)
            room -= len(text)
            if room < 0:
                break
        for aggregation in slot:
            if aggregation.data:
                aggregation.printed = True

    return printa


def _same_keys(slot: list[Aggregation], nodes: list[Tree], node: Tree) -> None:
    first = slot[0]
    for other in slot[1:]:
        a, b = len(first.key_types), len(other.key_types)
        if a != b:
            raise CompileError(
                f"printa( ): @{first.name} and @{other.name} do not have matching key signatures: "
                f"@{first.name} has {a} key{'' if a == 1 else 's'}, @{other.name} has {b} key{'' if b == 1 else 's'}",
                *_where(node),
            )
        for n, (x, y) in enumerate(zip(first.key_types, other.key_types, strict=True), 1):
            if x.kind != y.kind:
                raise CompileError(
                    f"printa( ): @{other.name}[ ] key #{n} is incompatible with @{first.name}:\n"
                    f"{'@' + first.name:>9} key #{n}: {x.name}\n{'@' + other.name:>9} key #{n}: {y.name}",
                    *_where(node),
                )


def joined_rows(aggregations: list[Aggregation], by_key: bool, reverse: bool, sort_pos: int = 0, key_pos: int = 0):
    """(key, [datum of each aggregation]) for every key any of them has, in dtrace's order."""
    if len(aggregations) == 1:
        only = aggregations[0]
        if not sort_pos and not key_pos:
            return [(key, [datum]) for key, datum in only.sorted_entries(by_key, reverse)]
    keys: dict[tuple, None] = {}
    for aggregation in aggregations:
        keys.update(dict.fromkeys(aggregation.data))
    # A key an aggregation lacks reads as zeroed data (dt_aggregate_walk_joined's zaggdata): 0 even for min/max
    blanks = [0 if a.function in ("min", "max") else None for a in aggregations]
    rows = [
        (
            key,
            [
                a.data[key] if key in a.data else (a.zero() if z is None else z)
                for a, z in zip(aggregations, blanks, strict=True)
            ],
        )
        for key in keys
    ]
    first = aggregations[0]
    sort_pos = sort_pos if 0 <= sort_pos < len(aggregations) else 0
    order = list(range(sort_pos, len(aggregations))) + list(range(sort_pos))

    def sort_key(row) -> tuple:
        key, data = row
        values = tuple(aggregations[i]._value_sort_key(data[i]) for i in order)
        parts = first._key_sort_key(key)
        start = key_pos if 0 <= key_pos < len(parts) else 0
        keys_first = parts[start:] + parts[:start]
        return (keys_first, values) if by_key else (values, keys_first)

    return sorted(rows, key=sort_key, reverse=reverse)


def render_row(aggregations: list[Aggregation], key: tuple, data: list, fmt: Format | None) -> str:
    first = aggregations[0]
    if fmt is None:
        if len(aggregations) == 1:
            return first.render_entry(key, data[0])
        values = "".join(a.render_value(d) for a, d in zip(aggregations, data, strict=True))
        return first.render_keys(key) + values + "\n"
    values = list(zip(key, first.key_types, strict=True))
    position = iter(range(len(aggregations)))

    def value(conversion) -> str:
        n = min(next(position, len(aggregations) - 1), len(aggregations) - 1)
        return aggregations[n].value_text(data[n], conversion)

    return fmt.render(values, value)


def _normalize(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    name = compiler._callee(node)
    wanted = 1 if name == "denormalize" else 2
    if len(args) != wanted:
        raise CompileError(f"{name}( ) prototype mismatch: {len(args)} args passed, {wanted} expected", *_where(node))
    _aggregation_args(compiler, node, name, args[:1], 1)
    factor = None
    if wanted == 2:
        normal = compiler._expr(args[1])
        if normal.type.kind != "int":
            raise CompileError(f"{name}( ) argument #2 must be of scalar type", *_where(node))
        factor = normal.fn
    slot = _resolve(compiler, args[:1], None, name)

    def normalize(f: Firing) -> None:
        value = int(factor(f)) & 0xFFFFFFFFFFFFFFFF if factor else 1
        if value == 0:
            raise DRuntimeError("divide-by-zero", DTRACEFLT_DIVZERO)
        slot[0].normal = value

    return normalize


ACTIONS: dict[str, Callable] = {"printa": compile_printa, "normalize": _normalize, "denormalize": _normalize}
