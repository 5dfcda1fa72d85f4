"""Compiling D's typed expressions: casts, sizeof, offsetof, stringof, `&` and `*`, `.` and `->`, indexing arrays
and pointers, pointer arithmetic, enumerators, inlines, alloca(), and assignment to objects in memory.

The interpreter (d_interp._Compiler) calls in here for what its own expressions do not cover; each function gets
the compiler `c` and a lark node and returns a d_interp.Expr (or None: not a typed construct, the interpreter goes
on). An expression of struct, union or array type evaluates to the object's address in the session's memory
(sim/trace/d_memory.py); one of scalar type to its value. Errors are worded as libdtrace's dt_parser.c words them.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Token, Tree

from sim.trace import d_interp as interp
from sim.trace import d_kernel, d_strings
from sim.trace.d_decls import fail, resolve_type_name
from sim.trace.d_memory import SCRATCH_BYTES, STRING_SIZE, DRuntimeError, Layout, read_string
from sim.trace.d_output import INT, INT64, STRING, VOID, DType
from sim.trace.d_system import SYSTEM_INLINES
from sim.trace.d_types import (
    TYPEDEFS,
    ArrayType,
    Member,
    PointerType,
    StructType,
    is_object,
    pointer_to,
)

SIZE_T = TYPEDEFS["size_t"]


def attach(c) -> None:
    """The compiler's tables for declarations (filled by d_decls.declare before the clauses compile)."""
    c.types = {}  # typedef names
    c.tags = dict(d_kernel.KERNEL_TAGS)  # (struct|union|enum, tag) -> type: the kernel's, then the program's
    c.enumerators = {}  # name -> (enum type, value)
    c.inlines = {}  # name -> d_decls.Inline
    c.statics = {}  # variables in memory: name -> (type, address)
    c.static_bytes = 0
    c.layout = Layout()
    c.this_declared = {}  # this-> variables declared outside clauses: name -> type
    c.inline_arguments = []  # a stack of {parameter: Expr} while an inline with a signature compiles
    c.translators = []  # d_decls.Translator, in declaration order
    c.fbt_arguments = set()  # functions whose fbt entry arguments a clause reads (d_kernel.enter_clause)
    c.clause_probes = []  # the probes of the clause being compiled
    c.xlate_sites = 0
    c.placeholder = lambda dtype: interp.Expr(lambda f: 0, dtype)  # a translator's input while it is checked
    c.builtin_names = set(interp.BUILTINS) | interp.ACTIONS | interp.UNSUPPORTED_FUNCTIONS


# --- places: objects in memory ------------------------------------------------------------------------------


class Place:
    """An lvalue in memory: its address (per firing), type, and the member it is, if a bit-field."""

    def __init__(self, address: Callable, dtype: DType, member: Member | None = None) -> None:
        self.address = address
        self.type = dtype
        self.member = member

    @property
    def bitfield(self) -> bool:
        return self.member is not None and self.member.bits > 0


def _memory(c):
    state = c.state_ref
    return lambda: state[0].memory


def value(c, place: Place):
    """The Expr reading a place: an object's address, a scalar's value (a bit-field's bits, sign-extended)."""
    address, dtype = place.address, place.type
    if is_object(dtype):
        return interp.Expr(address, dtype)
    if dtype.kind == "float":
        raise fail(None, f"operator cannot be applied to a value of type {dtype.name}: D has no floating point")
    memory = _memory(c)
    if place.bitfield:
        bits, shift = place.member.bits, place.member.bit_offset
        unit = DType("", "int", dtype.size, False)

        def load_bits(f):
            raw = (memory().load(address(f), unit) >> shift) & ((1 << bits) - 1)
            return raw - (1 << bits) if dtype.signed and raw >> (bits - 1) else raw

        return interp.Expr(load_bits, dtype)
    return interp.Expr(lambda f: memory().load(address(f), dtype), dtype)


def _storer(c, place: Place) -> Callable:
    memory = _memory(c)
    address, dtype = place.address, place.type
    if is_object(dtype):
        size = dtype.size

        def copy(f, source):
            m = memory()
            m.write(address(f), m.read(source, size))

        return copy
    if place.bitfield:
        bits, shift = place.member.bits, place.member.bit_offset
        unit = DType("", "int", dtype.size, False)
        mask = ((1 << bits) - 1) << shift

        def store_bits(f, v):
            m, at = memory(), address(f)
            m.store(at, unit, (m.load(at, unit) & ~mask) | ((int(v) << shift) & mask))

        return store_bits
    return lambda f, v: memory().store(address(f), dtype, v)


def place_of(c, node: Tree) -> Place | None:
    """The memory place a node names, or None (a dynamic variable, a constant, ...)."""
    kind = node.data if isinstance(node, Tree) else ""
    if kind == "ident":
        name = str(node.children[0])
        if name in c.statics and not _shadowed(c, name):
            dtype, at = c.statics[name]
            return Place(lambda f: at, dtype)
        return None
    if kind == "dot_member":
        base = c._expr(node.children[0])
        if base.type.kind not in ("struct", "union"):
            raise fail(node, f'operator . cannot be applied to type "{base.type.name}"; must be applied to a struct '
                       "or union")  # fmt: skip
        return _member_place(node, base.fn, base.type, str(node.children[1]))
    if kind == "member" and not _is_scope(node.children[0]):
        base = c._expr(node.children[0])
        dtype = base.type
        if not isinstance(dtype, PointerType):
            raise fail(node, "operator -> must be applied to a pointer")
        target = dtype.target
        if target.kind not in ("struct", "union"):
            raise fail(node, f'operator -> cannot be applied to pointer to type "{target.name}"; must be applied to '
                       "a struct or union pointer")  # fmt: skip
        if not target.complete:
            raise fail(node, f"operator -> cannot be applied to a forward declaration: no {target.name} definition "
                       "is available")  # fmt: skip
        return _member_place(node, base.fn, target, str(node.children[1]))
    if kind == "member":
        return _scoped_object(c, node)
    if kind == "subscript":
        return _element(c, node)
    if kind == "addr_deref" and str(node.children[0]) == "*":
        return _deref(c, node)
    return None


def _shadowed(c, name: str) -> bool:
    return any(name in bound for bound in c.inline_arguments)


def _is_scope(node) -> bool:
    return isinstance(node, Tree) and node.data == "ident" and str(node.children[0]) in ("self", "this")


def _member_place(node: Tree, base: Callable, sou: StructType, name: str) -> Place:
    member = sou.member(name) if isinstance(sou, StructType) else None
    if member is None:
        raise fail(node.children[1], f"{name} is not a member of {sou.name}")
    offset = member.offset
    return Place(lambda f: base(f) + offset, member.type, member)


def _scoped_object(c, node: Tree, assigned: DType | None = None) -> Place | None:
    """self->x / this->x of struct, union or array type: storage of its own (per thread for self->)."""
    scope, name = str(node.children[0].children[0]), str(node.children[1])
    table = c.tls if scope == "self" else c.locals
    dtype = table.get(name) or assigned
    if dtype is None or not is_object(dtype):
        return None
    table[name] = dtype
    if scope == "self":
        c.uses_self = True
    else:
        c.uses_this = True
    state, size = c.state_ref, dtype.size
    if scope == "self":
        return Place(lambda f: state[0].memory.storage_for(("self", f.tid, name), size), dtype)
    return Place(lambda f: state[0].memory.storage_for(("this", name), size), dtype)


def _element(c, node: Tree) -> Place | None:
    base_node, arguments = node.children
    if isinstance(base_node, Tree) and base_node.data == "ident":
        name = str(base_node.children[0])
        declared = c.statics.get(name, (c.globals.get(name),))[0]
        if declared is None or not (isinstance(declared, ArrayType | PointerType)):
            return None
    elif isinstance(base_node, Tree) and base_node.data == "aggregation":
        return None
    base = c._expr(base_node)
    if not isinstance(base.type, ArrayType | PointerType):
        return None
    if len(arguments.children) != 1:
        name = str(base_node.children[0]) if base_node.data == "ident" else base.type.name
        raise fail(node, f"cannot access {name} as an associative array")
    index = c._expr(arguments.children[0])
    if not index.type.is_int:
        raise fail(node, f'operator [ ] may not be applied to operand of type "{index.type.name}"')
    element = base.type.element if isinstance(base.type, ArrayType) else base.type.target
    if element == VOID:
        raise fail(node, "cannot dereference pointer to void")
    size, bfn, ifn = element.size, base.fn, index.fn
    return Place(lambda f: bfn(f) + ifn(f) * size, element)


def _deref(c, node: Tree) -> Place:
    operand = c._expr(node.children[1])
    dtype = operand.type
    if isinstance(dtype, ArrayType):
        return Place(operand.fn, dtype.element)
    if not isinstance(dtype, PointerType):
        raise fail(node, "cannot dereference non-pointer type")
    if dtype.target == VOID:
        raise fail(node, "cannot dereference pointer to void")
    return Place(operand.fn, dtype.target)


# --- expressions --------------------------------------------------------------------------------------------


def expression(c, node: Tree):
    """The Expr of a node kind only typed D has (dot_member, addr_deref, sizeof, stringof, offsetof), or None."""
    handler = _HANDLERS.get(node.data)
    return handler(c, node) if handler else None


def _dot_member(c, node: Tree):
    return value(c, place_of(c, node))


def arrow(c, node: Tree):
    """`p->m` on a pointer, or self->x/this->x of an object type; None for the interpreter's scalar self/this."""
    place = place_of(c, node)
    return value(c, place) if place is not None else None


def subscript(c, node: Tree):
    """Indexing an array or a pointer, or an inline with a tuple signature; None for associative arrays."""
    base, arguments = node.children
    if isinstance(base, Tree) and base.data == "ident" and str(base.children[0]) in c.inlines:
        return _inline_call(c, node, str(base.children[0]))
    if isinstance(base, Tree) and base.data == "ident" and str(base.children[0]) == "args":
        index = c._expr(arguments.children[0]) if len(arguments.children) == 1 else None
        if index is None or not index.is_const or not 0 <= int(index.const) <= 9:
            return None  # the interpreter words the error
        return d_kernel.typed_args(c, node, int(index.const))
    place = _element(c, node)
    return value(c, place) if place is not None else None


def _addr_deref(c, node: Tree):
    op, operand = str(node.children[0]), node.children[1]
    if op == "*":
        return value(c, _deref(c, node))
    if isinstance(operand, Tree) and operand.data in ("aggregation", "subscript") and _is_aggregation(operand):
        raise fail(node, "cannot take address of dynamic object")
    if isinstance(operand, Tree) and (operand.data == "ident" or (operand.data == "member" and
                                                                  _is_scope(operand.children[0]))):  # fmt: skip
        raise fail(node, "cannot take address of dynamic variable")
    place = place_of(c, operand) if isinstance(operand, Tree) else None
    if place is None:
        raise fail(node, "unacceptable operand for unary & operator")
    if place.bitfield:
        raise fail(node, "cannot take address of bit-field")
    return interp.Expr(place.address, pointer_to(place.type))


def _is_aggregation(node: Tree) -> bool:
    return node.data == "aggregation" or (node.data == "subscript" and node.children[0].data == "aggregation")


def _sizeof_type(c, node: Tree):
    dtype = resolve_type_name(c, node.children[0])
    return _size_constant(node, dtype)


def _size_constant(node: Tree, dtype: DType):
    if dtype == VOID or (isinstance(dtype, StructType) and not dtype.complete) or dtype.size <= 0:
        raise fail(node, "cannot apply sizeof to an operand of unknown size")
    size = dtype.size
    return interp.Expr(lambda f: size, SIZE_T, size)


def _sizeof_expr(c, node: Tree):
    operand = node.children[0]
    if isinstance(operand, Tree) and operand.data == "ident" and str(operand.children[0]) in c.arrays:
        name = str(operand.children[0])
        raise fail(node, f"associative array '{name}' may not be referenced as scalar")
    if isinstance(operand, Tree) and operand.data in ("dot_member", "member") and not _is_scope(operand.children[0]):
        place = place_of(c, operand)
        if place is not None and place.bitfield:
            raise fail(node, "cannot apply sizeof to a bit-field")
    return _size_constant(node, c._expr(operand).type)


def _offsetof(c, node: Tree):
    dtype = resolve_type_name(c, node.children[0])
    name = str(node.children[1])
    if not isinstance(dtype, StructType) or not dtype.complete:
        raise fail(node, "offsetof operand must be a struct or union type")
    member = dtype.member(name)
    if member is None:
        raise fail(node.children[1], f"{name} is not a member of {dtype.name}")
    if member.bits:
        raise fail(node, f"cannot take offset of a bit-field: {name}")
    offset = member.offset
    return interp.Expr(lambda f: offset, SIZE_T, offset)


def _stringof(c, node: Tree):
    operand = c._expr(node.children[0])
    if operand.type.kind == "string":
        return operand
    if operand.type.kind not in ("int", "array"):
        raise fail(node, f"cannot apply stringof to a value of type {operand.type.name}")
    fn, memory = operand.fn, _memory(c)
    return interp.Expr(lambda f: read_string(memory(), fn(f), STRING_SIZE), STRING)


def _xlate(c, node: Tree):
    """xlate<OUT>(value) or xlate<OUT *>(value): an OUT filled by the translator from the value's type, in storage
    of this expression's own (a pointer to it for OUT *)."""
    type_node, operand_node = (child for child in node.children if isinstance(child, Tree))
    wanted = resolve_type_name(c, type_node)
    operand = c._expr(operand_node)
    output = wanted.target if isinstance(wanted, PointerType) else wanted
    translator = next((t for t in c.translators if t.output is output and _accepts(t.input, operand.type)), None)
    if translator is None:
        raise fail(node, f'cannot translate from "{operand.type.name}" to "{wanted.name}"')
    c.xlate_sites += 1
    site, size, state = c.xlate_sites, output.size, c.state_ref
    c.inline_arguments.append({translator.name: operand})
    try:
        stores = [(_storer_at(c, member), c._expr(expression).fn) for member, expression in translator.members]
    finally:
        c.inline_arguments.pop()

    def translate(f):
        memory = state[0].memory
        at = memory.storage_for(("xlate", site), size)
        memory.write(at, bytes(size))
        for store, value in stores:
            store(f, at, value(f))
        return at

    return interp.Expr(translate, wanted)


def _accepts(declared: DType, given: DType) -> bool:
    if isinstance(declared, PointerType) or isinstance(given, PointerType):
        return isinstance(given, PointerType) and isinstance(declared, PointerType) and declared.target == given.target
    return declared == given or (declared.is_int and given.is_int)


def _storer_at(c, member: Member):
    """A store of one member into a translated object at a given address."""
    # The place's address is the translated object's, set per evaluation: the object is made at each xlate.
    where = [0]
    store = _storer(c, Place(lambda f: where[0] + member.offset, member.type, member))

    def place_at(f, at, v):
        where[0] = at
        store(f, v)

    return place_at


_HANDLERS = {
    "xlate": _xlate,
    "dot_member": _dot_member,
    "addr_deref": _addr_deref,
    "sizeof_type": _sizeof_type,
    "sizeof_expr": _sizeof_expr,
    "offsetof": _offsetof,
    "stringof": _stringof,
}


def cast(c, node: Tree):
    type_node, operand_node = node.children
    dtype = resolve_type_name(c, type_node)
    operand = c._expr(operand_node)
    source = operand.type
    scalar_source = source.kind == "int" or isinstance(source, ArrayType)
    if dtype == VOID:
        return interp.Expr(operand.fn, VOID)
    if (dtype.kind == "string" and source.kind == "string") or (is_object(dtype) and dtype == source):
        return operand
    if dtype.kind != "int" or not scalar_source:
        raise fail(node, f'invalid cast expression: "{source.name}" to "{dtype.name}"')
    if operand.is_const:
        # dt_parser.c folds a narrowing cast of a constant in its uintmax_t dn_value: a logical shift, no sign
        value = int(operand.const)
        folded = value & ((1 << 8 * dtype.size) - 1) if dtype.size < source.size else dtype.wrap(value)
        return interp.Expr(lambda f: folded, dtype, folded)
    return interp.Expr(interp._wrapping(dtype, operand.fn), dtype)


def ident(c, node: Tree, name: str):
    """Names declarations give: an inline's parameter or value, a variable in memory, an enumerator, NULL."""
    for bound in reversed(c.inline_arguments):
        if name in bound:
            return bound[name]
    if name in c.inlines:
        inline = c.inlines[name]
        if inline.parameters is not None:
            raise fail(node, f"inline {name} is an associative array: index it, as {name}[key]")
        return _converted(c._expr(inline.body), inline.type)
    if name in c.statics:
        return value(c, place_of(c, node))
    if name in c.enumerators:
        dtype, number = c.enumerators[name]
        return interp.Expr(lambda f: number, dtype, number)
    if name == "NULL":
        return interp.Expr(lambda f: 0, INT, 0)
    if name in SYSTEM_INLINES:
        number = SYSTEM_INLINES[name]
        return interp.Expr(lambda f: number, INT, number)
    if name == "curthread":
        return d_kernel.curthread(c)
    return None


def _converted(expr, dtype: DType):
    if dtype.kind != "int" or expr.type == dtype or expr.type.kind != "int":
        return interp.Expr(expr.fn, dtype if dtype.kind == expr.type.kind else expr.type, expr.const)
    if expr.is_const:
        folded = dtype.wrap(int(expr.const))
        return interp.Expr(lambda f: folded, dtype, folded)
    return interp.Expr(interp._wrapping(dtype, expr.fn), dtype)


def _inline_call(c, node: Tree, name: str):
    inline = c.inlines[name]
    arguments = node.children[1].children
    if inline.parameters is None:
        raise fail(node, f"cannot access {name} as an associative array")
    if len(arguments) != len(inline.parameters):
        raise fail(node, f"{name}[ ] prototype mismatch: {len(arguments)} args passed, "
                   f"{len(inline.parameters)} expected")  # fmt: skip
    bound = {}
    for (pname, ptype), argument in zip(inline.parameters, arguments, strict=True):
        bound[pname] = _converted(c._expr(argument), ptype)
    c.inline_arguments.append(bound)
    try:
        return _converted(c._expr(inline.body), inline.type)
    finally:
        c.inline_arguments.pop()


def lvalue(c, target: Tree, assigned: DType | None):
    """(get, put, type) of an assignable place in memory, or None for the interpreter's own variables."""
    if not isinstance(target, Tree):
        return None
    if target.data == "ident" and str(target.children[0]) not in c.statics:
        name = str(target.children[0])
        if assigned is None or not is_object(assigned) or name in c.globals:
            return None
        c.statics[name] = (assigned, c.layout.allocate(assigned.size))  # `copy = some_struct;` declares it
    if target.data == "member" and _is_scope(target.children[0]):
        place = _scoped_object(c, target, assigned)
    else:
        place = place_of(c, target)
    if place is None:
        return None
    if place.type.kind in ("float", "array") and not is_object(assigned or VOID):
        raise fail(target, "operator = requires modifiable lvalue as an operand")
    got = value(c, place)
    return got.fn, _storer(c, place), place.type


def binop(c, op_token: Token, op: str, left, right):
    """Pointer arithmetic (p + n steps over n objects, p - q counts them) and constant division by zero; None for
    the interpreter's own integer operators."""
    if op in ("/", "%") and right.is_const and right.type.is_int and int(right.const) == 0:
        raise fail(op_token, "expression contains division by zero")
    if op in ("==", "!=") and {left.type.kind, right.type.kind} == {"string", "int"}:
        number = left if left.type.kind == "int" else right
        if number.is_const and int(number.const) == 0:  # NULL, a pointer; any other integer is refused
            return _string_pointer_comparison(op, left, right)
    lt, rt = _decayed(left.type), _decayed(right.type)
    if not (isinstance(lt, PointerType) or isinstance(rt, PointerType)):
        return None
    if op not in ("+", "-"):
        return None
    lf, rf = left.fn, right.fn
    if isinstance(lt, PointerType) and isinstance(rt, PointerType):
        if op == "+" or lt.target != rt.target:
            raise fail(op_token, f'operands have incompatible types: "{lt.name}" {op} "{rt.name}"')
        size = lt.referent_size
        return interp.Expr(lambda f: interp._c_div(lf(f) - rf(f), size), INT64)
    if isinstance(rt, PointerType):
        if op == "-":
            raise fail(op_token, f'operands have incompatible types: "{lt.name}" - "{rt.name}"')
        lf, rf, lt, rt = rf, lf, rt, lt
    size = lt.referent_size
    step = size if op == "+" else -size
    return interp.Expr(interp._wrapping(lt, lambda f: lf(f) + rf(f) * step), lt)


def _string_pointer_comparison(op: str, left, right):
    """`s != NULL`: a string is a pointer, NULL only when a subroutine found nothing (d_strings.NullString)."""
    lf = left.fn if left.type.kind == "int" else (lambda f, fn=left.fn: d_strings.as_pointer(fn(f)))
    rf = right.fn if right.type.kind == "int" else (lambda f, fn=right.fn: d_strings.as_pointer(fn(f)))
    if op == "==":
        return interp.Expr(lambda f: 1 if lf(f) == rf(f) else 0, INT)
    return interp.Expr(lambda f: 1 if lf(f) != rf(f) else 0, INT)


def decayed(expr):
    """An array used as a value (assigned, passed) is a pointer to its first element, as in C."""
    return interp.Expr(expr.fn, _decayed(expr.type)) if isinstance(expr.type, ArrayType) else expr


def _decayed(dtype: DType) -> DType:
    """An array used as a value is a pointer to its first element, as in C."""
    return pointer_to(dtype.element) if isinstance(dtype, ArrayType) else dtype


def call(c, node: Tree, name: str):
    """Functions over memory: alloca(size) hands out scratch memory for the rest of the firing."""
    if name != "alloca":
        return None
    arguments = node.children[1].children if node.children[1] is not None else []
    if len(arguments) != 1:
        raise fail(node, f"alloca( ) prototype mismatch: {len(arguments)} args passed, 1 expected")
    size = c._expr(arguments[0])
    if not size.type.is_int:
        raise fail(arguments[0], "alloca( ) argument #1 must be of integral type")
    state, sfn = c.state_ref, size.fn

    def alloca(f):
        st = state[0]
        n = sfn(f)
        if not 0 <= n <= SCRATCH_BYTES:
            raise DRuntimeError(f"out of scratch space: alloca({n})")
        return st.memory.alloca(st.firings, n)

    return interp.Expr(alloca, pointer_to(VOID))


def char_string(c, expr, pointers: bool):
    """A char array (and, if `pointers`, a char *) as the string it holds, as printf's %s and trace() read one
    (dt_printf.c's pfcheck_str); any other expression as it is."""
    dtype = expr.type
    if isinstance(dtype, ArrayType) and dtype.element.size == 1 and dtype.element.is_int:
        limit = dtype.size
    elif pointers and isinstance(dtype, PointerType) and dtype.target.size == 1 and dtype.target.is_int:
        limit = STRING_SIZE
    else:
        return expr
    fn, memory = expr.fn, _memory(c)
    return interp.Expr(lambda f: read_string(memory(), fn(f), limit), STRING)


def printf_values(c, slots: list, values: list) -> list:
    """printf's arguments (one per slot: a conversion's value, or its * width or precision), a char array or
    pointer given to %s read as its string, and a constant narrower than an int recorded as an int (libdtrace
    prints `(char)0x1234567890abcdef` with %d as 239: the folded constant's record is int-sized)."""
    return [char_string(c, value, pointers=True) if n < len(slots) and slots[n][1] == "value"
            and slots[n][0].letter == "s" else _int_record(value) for n, value in enumerate(values)]  # fmt: skip


def _int_record(expr):
    dtype = expr.type
    if not expr.is_const or dtype.kind != "int" or dtype.size >= INT.size:
        return expr
    return interp.Expr(expr.fn, DType(dtype.name, "int", INT.size, dtype.signed), expr.const)
