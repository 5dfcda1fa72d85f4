"""D declarations outside clauses, read as libdtrace's dt_decl.c reads them: type specifiers combined into a type,
struct/union/enum definitions, typedefs, typed global, self-> and this-> variables, and inline definitions.

`declare(compiler, trees)` fills the compiler's tables before its clauses compile: `types` (typedef names),
`tags` (struct, union and enum tags), `enumerators`, `inlines`, `statics` (variables that live in memory: struct,
union and array types) and the existing `globals`, `tls` and `this_declared` for scalar variables. Errors are
worded as libdtrace's D_DECL_* messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from lark import Token, Tree

from sim.trace.d_output import AGGREGATING_FUNCTIONS, INT, STRING, VOID, DType
from sim.trace.d_parser import CompileError
from sim.trace.d_types import (
    TYPEDEFS,
    ArrayType,
    EnumType,
    Member,
    PointerType,
    StructType,
    array_of,
    basic_type,
    is_object,
    lay_out,
    modifier_error,
    new_struct,
    pointer_to,
)

MAX_ARRAY_DIMENSION = 0xFFFF_FFFF  # dt_decl.c: a dimension past UINT_MAX is "too big"
MAX_STATIC_BYTES = 1 << 20  # what a program's static variables may take, all together
INT_MAX = 0x7FFF_FFFF
INT_MIN = -0x8000_0000


def fail(node: Tree | Token | None, message: str) -> CompileError:
    if isinstance(node, Token):
        return CompileError(message, node.line, node.column)
    meta = getattr(node, "meta", None)
    return CompileError(message, getattr(meta, "line", None), getattr(meta, "column", None))


@dataclass
class Translator:
    """`translator OUT < IN name > { member = expression; ... };`: how xlate<OUT>(value of IN) fills an OUT."""

    output: StructType
    input: DType
    name: str
    members: list[tuple[Member, Tree]]


@dataclass
class Inline:
    type: DType
    body: Tree
    parameters: list[tuple[str, DType]] | None  # an inline with a tuple signature: i4[int x, int y]


def constant_of(c, node: Tree) -> int | None:
    """The value of an integral constant expression (an enumerator's, a dimension's, a bit-field's width)."""
    expr = c._expr(node)
    return int(expr.const) if expr.is_const and expr.type.is_int else None


def declare(c, trees: list[Tree]) -> None:
    for tree in trees:
        if tree.data == "typedef":
            _typedef(c, tree)
        elif tree.data == "inline":
            _inline(c, tree)
        elif tree.data == "translator":
            _translator(c, tree)
        else:
            _variables(c, tree)


def resolve_specifiers(c, node: Tree) -> DType:
    """The type a decl_specifiers list names: basic words (`unsigned long`), a typedef name, a struct, union or
    enum; qualifiers (const, volatile) are read and dropped, as D ignores them."""
    words: list[str] = []
    named: list[DType] = []
    for child in node.children:
        if isinstance(child, Token) and child.type == "BASIC":
            words.append(str(child))
        elif isinstance(child, Token) and child.type == "TNAME":
            named.append(c.types.get(str(child)) or TYPEDEFS[str(child)])
        elif isinstance(child, Tree) and child.data == "sou_spec":
            named.append(_sou(c, child))
        elif isinstance(child, Tree) and child.data == "scoped_sou_spec":  # union D`s: the module's type is ours
            module = str(child.children[1])
            if module != "D":
                raise fail(child, f"no such module: {module} (trapscope's types are D's own and the kernel's)")
            named.append(_sou(c, Tree("sou_spec", [child.children[0], child.children[3]], child.meta)))
        elif isinstance(child, Tree) and child.data == "enum_spec":
            named.append(_enum(c, child))
    if len(named) > 1:
        raise fail(node, "invalid type combination")
    if named:
        problem = modifier_error(words, named[0])
        if problem:
            raise fail(node, problem)
        return named[0]
    if not words:
        raise fail(node, "invalid type combination")
    found = basic_type(words)
    if isinstance(found, str):
        raise fail(node, found)
    return found


def resolve_type_name(c, node: Tree) -> DType:
    """A type_name (a cast's, sizeof's or offsetof's): specifiers, then '*'s and array dimensions."""
    specifiers, stars = node.children
    dtype = resolve_specifiers(c, specifiers)
    for child in stars.children:
        if isinstance(child, Token):
            dtype = pointer_to(dtype)
    dims = [child for child in stars.children if isinstance(child, Tree)]
    for dim in reversed(dims):
        dtype = array_of(dtype, _dimension(c, dim, ""))
    return dtype


def _sou(c, node: Tree) -> StructType:
    kind = str(node.children[0].children[0])
    rest = node.children[1:]
    tag = str(rest[0]) if rest and isinstance(rest[0], Token) else ""
    members = [m for m in rest if isinstance(m, Tree)]
    has_body = len(rest) > (1 if tag else 0) or not tag
    key = (kind, tag)
    existing = c.tags.get(key) if tag else None
    if existing is None:  # struct and union tags are apart, as CTF keeps them
        existing = new_struct(kind, tag)
        if tag:
            c.tags[key] = existing
    if not has_body:
        return existing
    if existing.complete:
        raise fail(node, f"type redeclared: {existing.name}")
    laid: list[tuple[str, DType, int]] = []
    for member in members:
        base = resolve_specifiers(c, member.children[0])
        for declarator in member.children[1:]:
            laid.append(_member(c, existing, base, declarator))
    names = [name for name, _, _ in laid]
    for name in names:
        if names.count(name) > 1:
            raise fail(node, f"failed to define member '{name}': Duplicate member or variable name")
    lay_out(existing, laid)
    return existing


def _member(c, sou: StructType, base: DType, node: Tree) -> tuple[str, DType, int]:
    if node.data == "bitfield":
        declarator = node.children[0]
        name, dtype = _declarator(c, base, declarator) if declarator is not None else ("", base)
        width = constant_of(c, node.children[-1])
        if width is None or width <= 0:
            raise fail(node, "positive integral constant expression expected as bit-field size")
        if not dtype.is_int or dtype.kind != "int":
            raise fail(node, f"invalid type for bit-field: {name}")
        if width > dtype.size * 8:
            raise fail(node, f"bit-field too big for type: {name}")
        return name, dtype, width
    name, dtype = _declarator(c, base, node.children[0], in_member=True)
    if dtype == VOID:
        raise fail(node, f"cannot have void member: {name}")
    if isinstance(dtype, StructType) and not dtype.complete:
        raise fail(node, f"incomplete struct/union/enum {dtype.name}: {name}")
    return name, dtype, 0


def _enum(c, node: Tree) -> EnumType:
    rest = node.children
    tag = str(rest[0]) if rest and isinstance(rest[0], Token) else ""
    enumerators = [e for e in rest if isinstance(e, Tree)]
    key = ("enum", tag)
    if tag and key in c.tags and not enumerators:
        return c.tags[key]
    if tag and key in c.tags:
        raise fail(node, f"type redeclared: enum {tag}")
    dtype = EnumType(f"enum {tag}" if tag else "enum <anon>", "int", 4, True, tag)
    if tag:
        c.tags[key] = dtype
    value = -1
    seen: set[str] = set()
    for enumerator in enumerators:
        name_token = enumerator.children[0]
        name = str(name_token)
        if len(enumerator.children) > 1 and enumerator.children[1] is not None:
            value = constant_of(c, enumerator.children[1])
            if value is None:
                raise fail(enumerator, f"enumerator '{name}' must be assigned to an integral constant expression")
        else:
            value += 1
        if not INT_MIN <= value <= INT_MAX:
            raise fail(enumerator, f"enumerator '{name}' value overflows INT_MAX ({INT_MAX})")
        if name in seen or name in c.enumerators:
            raise fail(enumerator, f"failed to define enumerator '{name}': Duplicate member or variable name")
        seen.add(name)
        c.enumerators[name] = (dtype, value)
    return dtype


def _declarator(c, base: DType, node: Tree, in_member: bool = False) -> tuple[str, DType]:
    """(name, type) of a declarator over a base type: `*p`, `a[5]`, `m[2][3]` (an array of arrays)."""
    if node.data == "function_declarator":  # D has no functions of its own: a function is an object of no size
        name = next(str(t) for t in node.scan_values(lambda t: isinstance(t, Token) and t.type == "IDENT"))
        inner = next((child for child in node.children if isinstance(child, Tree) and child.data == "declarator"), None)
        if inner is not None and any(isinstance(t, Token) and t.type == "STAR" for t in inner.children):
            return name, pointer_to(VOID)  # (*f)(): a pointer to a function, an address as D stores it
        raise fail(node, f"cannot have void {'member' if in_member else 'object'}: {name}")
    dtype = base
    name = ""
    dims = []
    for child in node.children:
        if isinstance(child, Token) and child.type == "STAR":
            dtype = pointer_to(dtype)
        elif isinstance(child, Token):
            name = str(child)
        else:
            dims.append(child)
    for dim in reversed(dims):
        if dim.data == "tuple_dimension":
            raise _tuple_problem(c, dim, name)
        dtype = array_of(dtype, _dimension(c, dim, name))
    return name, dtype


def _tuple_problem(c, dim: Tree, name: str) -> CompileError:
    """An associative array declaration with a tuple signature; trapscope types the keys from their first use,
    so it reads the signature only for the errors libdtrace finds in it."""
    for n, parameter in enumerate(dim.children[0].children, 1):
        if isinstance(parameter.children[0], Token) and parameter.children[0].type == "ELLIPSIS":
            return fail(dim, "array prototype may not use a variable-length argument list")
        dtype = resolve_specifiers(c, parameter.children[0])
        if dtype == VOID:
            return fail(dim, f"array prototype may not use parameter of type void: {name}, parameter #{n}")
    return fail(dim, f"associative array declarations are not supported by trapscope's D: {name}")


def _dimension(c, dim: Tree, name: str) -> int:
    expression = dim.children[0] if dim.children else None
    if expression is None:
        raise fail(dim, f"array declaration requires array dimension or tuple signature: {name}")
    value = constant_of(c, expression)
    if value is None or value <= 0:
        raise fail(dim, "positive integral constant expression or tuple signature expected as array declaration "
                   "subscript")  # fmt: skip
    if value > MAX_ARRAY_DIMENSION:
        raise fail(dim, "array dimension too big")
    return value


def _typedef(c, node: Tree) -> None:
    base = resolve_specifiers(c, node.children[0])
    for declarator in node.children[1].children:
        name, dtype = _declarator(c, base, declarator)
        if name in c.types or name in TYPEDEFS:
            raise fail(declarator, f"typedef redeclared: {name}")
        c.types[name] = dtype


def _classes(c, node: Tree) -> str:
    classes = [str(child.children[0]) for child in node.children if isinstance(child, Tree)
               and child.data == "decl_class"]  # fmt: skip
    if len(classes) > 1:
        raise fail(node, "only one storage class allowed in a declaration")
    scope = classes[0] if classes else ""
    if scope in ("register", "static"):
        raise fail(node, "specified storage class not appropriate in D")
    return scope


def _variables(c, node: Tree) -> None:
    scope = _classes(c, node)
    specifiers = next((ch for ch in node.children if isinstance(ch, Tree) and ch.data == "decl_specifiers"), None)
    declarators = next((ch for ch in node.children if isinstance(ch, Tree) and ch.data == "declarators"), None)
    base = resolve_specifiers(c, specifiers) if specifiers is not None else INT  # `self x;`: C's implicit int
    if declarators is None:
        return  # a struct, union or enum definition on its own
    for declarator in declarators.children:
        if not scope and _associative_array(c, base, declarator):
            continue
        name, dtype = _declarator(c, base, declarator)
        _variable(c, declarator, scope, name, dtype)


def _associative_array(c, base: DType, declarator: Tree) -> bool:
    """`int64_t val[int];`: an associative array of integers or strings, keyed by the types of its signature; its
    uses are then checked against them (an array of structs or arrays is not supported)."""
    parts = declarator.children
    dims = [child for child in parts if isinstance(child, Tree)]
    if len(dims) != 1 or dims[0].data != "tuple_dimension" or base.kind not in ("int", "string") or base == VOID:
        return False
    if any(isinstance(t, Token) and t.type == "STAR" for t in parts):
        return False
    name = next(str(t) for t in parts if isinstance(t, Token) and t.type == "IDENT")
    keys = []
    for parameter in dims[0].children[0].children:
        if isinstance(parameter.children[0], Token):
            return False  # `...`: _tuple_problem words the error
        keys.append(resolve_specifiers(c, parameter.children[0]))
    if any(key.kind not in ("int", "string") for key in keys):
        return False
    if name in c.arrays or name in c.globals or name in c.statics:
        raise fail(declarator, f"identifier redeclared: {name}")
    c.arrays[name] = (tuple(keys), base)
    return True


def _variable(c, node: Tree, scope: str, name: str, dtype: DType) -> None:
    if dtype == VOID:
        raise fail(node, f"cannot have void object: {name}")
    if isinstance(dtype, StructType) and not dtype.complete:
        raise fail(node, f"incomplete struct/union/enum {dtype.name}: {name}")
    if isinstance(dtype, ArrayType) and dtype.element == VOID:
        raise fail(node, "cannot declare array of void")
    if scope == "self":
        _redeclared(c.tls, name, dtype, node)
        c.tls[name] = dtype
        return
    if scope == "this":
        _redeclared(c.this_declared, name, dtype, node)
        c.this_declared[name] = dtype
        return
    if name in c.globals or name in c.statics:
        raise fail(node, f"identifier redeclared: {name}")
    if is_object(dtype) or dtype.kind == "float":
        c.static_bytes += dtype.size
        if c.static_bytes > MAX_STATIC_BYTES:
            raise fail(node, f"static variables take {c.static_bytes:,} bytes; the limit is {MAX_STATIC_BYTES:,}")
        c.statics[name] = (dtype, c.layout.allocate(dtype.size))
        return
    c.globals[name] = dtype


def _redeclared(table: dict, name: str, dtype: DType, node: Tree) -> None:
    if name in table and table[name] != dtype:
        raise fail(node, f"identifier redeclared: {name}")


def _inline(c, node: Tree) -> None:
    specifiers, declarator, body = node.children
    base = resolve_specifiers(c, specifiers)
    parameters = None
    dims = [child for child in declarator.children if isinstance(child, Tree)]
    name = next(str(t) for t in declarator.children if isinstance(t, Token) and t.type == "IDENT")
    if dims and dims[-1].data == "tuple_dimension":
        parameters = []
        for parameter in dims[-1].children[0].children:
            ptype = resolve_specifiers(c, parameter.children[0])
            pname = next((str(t) for t in parameter.children[2:] if isinstance(t, Token)), "")
            parameters.append((pname, ptype))
    elif dims:
        raise fail(declarator, f"inline declaration cannot be of scalar array type: {name}")
    if any(isinstance(t, Token) and t.type == "STAR" for t in declarator.children):
        base = pointer_to(base)
    if base == VOID:
        raise fail(declarator, f"cannot declare void inline: {name}")
    if name in c.library.SUBROUTINES or name in c.library.ACTIONS or name in AGGREGATING_FUNCTIONS:
        # dt_node_inline: the name is a D function's (rand, speculate, count, ...)
        raise fail(declarator, f"identifier redefined: {name}\n\t current: inline definition\n\tprevious: function ")
    if name in c.inlines or name in c.globals or name in c.builtin_names:
        raise fail(declarator, f"identifier redeclared: {name}")
    inline = Inline(base, body, parameters)
    if parameters is None:
        value = c._expr(body)  # compiled before the name is known: `inline int foo = foo + 3;` cannot resolve
        if value.type.kind != base.kind and not (base == STRING and value.type.kind == "string"):
            raise fail(body, f'inline {name} definition uses incompatible types: "{base.name}" = "{value.type.name}"')
    c.inlines[name] = inline


def _translator(c, node: Tree) -> None:
    parts = [child for child in node.children if not (isinstance(child, Token) and child.type in ("LT", "GT"))]
    output_specifiers, input_specifiers, stars, name_token, *translations = parts
    output = resolve_specifiers(c, output_specifiers)
    if output.kind not in ("struct", "union"):
        raise fail(output_specifiers, "translator output type must be a struct or union")
    if not output.complete:
        raise fail(output_specifiers, f"incomplete struct/union/enum {output.name}")
    source = resolve_type_name(c, Tree("type_name", [input_specifiers, stars]))
    for existing in c.translators:
        if existing.output is output and existing.input == source:
            raise fail(node, f"translator from {source.name} to {output.name} has already been declared")
    name = str(name_token)
    members = []
    placeholder = c.placeholder(source)  # the input, for checking each member's expression as it is declared
    for translation in translations:
        member_token, expression = translation.children
        member = output.member(str(member_token))
        if member is None:
            raise fail(member_token, f"translator member {member_token} is not a member of {output.name}")
        c.inline_arguments.append({name: placeholder})
        try:
            value = c._expr(expression)
        finally:
            c.inline_arguments.pop()
        if value.type.kind != member.type.kind or _pointer(value.type) != _pointer(member.type):
            raise fail(translation, f"translator member {member.name} definition uses incompatible types: "
                       f'"{member.type.name}" = "{value.type.name}"')  # fmt: skip
        members.append((member, expression))
    c.translators.append(Translator(output, source, name, members))


def _pointer(dtype: DType) -> bool:
    return isinstance(dtype, PointerType)
