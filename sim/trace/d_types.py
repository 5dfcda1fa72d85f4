"""D's C types beyond the integers of d_output.DType: pointers, arrays, structs, unions, enums, floating point.

A value of integer, enum or pointer type is a Python int (a pointer holds an address in d_memory's address space);
pointers keep kind "int" so that everything scalar (predicates, comparisons, printf's %d/%x/%p, aggregation keys)
takes them as libdtrace does, and the operators whose meaning differs for pointers (+, -, *, [ ], ->) look at
`PointerType` itself. A value of struct, union or array type lives in memory: an expression of such a type
evaluates to the object's address. Sizes and alignments are those of the LP64 amd64 ABI, as CTF describes
FreeBSD's kernel types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sim.trace.d_output import CHAR, INT, INT64, STRING, TYPES, UINT, UINT64, VOID, DType

POINTER_SIZE = 8


@dataclass(frozen=True)
class PointerType(DType):
    target: DType = VOID

    @property
    def referent_size(self) -> int:
        """What p + 1 steps over: the size of *p (void * steps by 1, as gcc and libdtrace do)."""
        return self.target.size or 1


def pointer_to(target: DType) -> PointerType:
    return PointerType(f"{target.name} *", "int", POINTER_SIZE, False, target)


@dataclass(frozen=True)
class ArrayType(DType):
    element: DType = INT
    count: int = 0


def array_of(element: DType, count: int) -> ArrayType:
    return ArrayType(f"{element.name} [{count}]", "array", element.size * count, False, element, count)


@dataclass(frozen=True)
class FloatType(DType):
    """float, double, long double: storable and sizeable, as in D, but D does no arithmetic on them."""


FLOAT_TYPES = {
    "float": FloatType("float", "float", 4),
    "double": FloatType("double", "float", 8),
    "long double": FloatType("long double", "float", 16),
}


@dataclass(frozen=True)
class Member:
    name: str
    type: DType
    offset: int  # bytes from the start of the struct
    bits: int = 0  # a bit-field's width (0: not a bit-field)
    bit_offset: int = 0  # a bit-field's first bit within the storage unit at `offset`


@dataclass(frozen=True, eq=False)
class StructType(DType):
    """A struct or union (kind "struct" or "union"); its members are filled in when its body is declared, so a
    forward declaration (`struct foo;`, or a pointer to one) is the same object as the later definition."""

    tag: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    align: int = 1
    complete: bool = False

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def member(self, name: str) -> Member | None:
        return self.members.get(name)


def new_struct(kind: str, tag: str) -> StructType:
    name = f"{kind} {tag}" if tag else f"{kind} <anon>"
    return StructType(name, kind, 0, False, tag)


def lay_out(sou: StructType, members: list[tuple[str, DType, int]]) -> None:
    """Place (name, type, bits) members as the C ABI does: each at its alignment, bit-fields packed into units of
    their declared type; a union's all at 0. The size is rounded up to the strictest alignment."""
    offset_bits, align, size = 0, 1, 0
    placed: dict[str, Member] = {}
    for name, dtype, bits in members:
        member_align = alignment(dtype)
        align = max(align, member_align)
        if sou.kind == "union":
            placed[name] = Member(name, dtype, 0, bits, 0)
            size = max(size, dtype.size)
            continue
        unit = dtype.size * 8
        if bits:
            start = offset_bits
            if start // unit != (start + bits - 1) // unit:  # it would straddle a unit: start the next one
                start = -(-start // unit) * unit
            unit_offset = start // unit * dtype.size
            placed[name] = Member(name, dtype, unit_offset, bits, start - unit_offset * 8)
            offset_bits = start + bits
            continue
        start = -(-offset_bits // (member_align * 8)) * member_align
        placed[name] = Member(name, dtype, start, 0, 0)
        offset_bits = (start + dtype.size) * 8
    if sou.kind != "union":
        size = -(-offset_bits // 8)
    object.__setattr__(sou, "members", placed)
    object.__setattr__(sou, "align", align)
    object.__setattr__(sou, "size", -(-size // align) * align)
    object.__setattr__(sou, "complete", True)


def alignment(dtype: DType) -> int:
    if isinstance(dtype, StructType):
        return dtype.align
    if isinstance(dtype, ArrayType):
        return alignment(dtype.element)
    if dtype.kind == "string":
        return 1
    return max(1, min(dtype.size, 16))


@dataclass(frozen=True)
class EnumType(DType):
    """An enum: an int whose named constants the program may use; printed and compared as an int."""

    tag: str = ""


# Type names D knows without a declaration: dt_open.c's intrinsic types and the typedefs of FreeBSD's headers
# that scripts use most (sys/types.h, sys/_types.h, machine/_types.h, vm/vm.h).
def _int(name: str, size: int, signed: bool) -> DType:
    return DType(name, "int", size, signed)


TYPEDEFS: dict[str, DType] = {
    "int8_t": TYPES["int8_t"], "int16_t": TYPES["int16_t"], "int32_t": TYPES["int32_t"], "int64_t": INT64,
    "uint8_t": TYPES["uint8_t"], "uint16_t": TYPES["uint16_t"], "uint32_t": TYPES["uint32_t"], "uint64_t": UINT64,
    "intptr_t": _int("intptr_t", 8, True), "uintptr_t": TYPES["uintptr_t"], "size_t": TYPES["size_t"],
    "ssize_t": TYPES["ssize_t"], "pid_t": TYPES["pid_t"], "id_t": TYPES["id_t"], "uid_t": TYPES["uid_t"],
    "gid_t": _int("gid_t", 4, False), "lwpid_t": _int("lwpid_t", 4, True), "uint_t": UINT,
    "uchar_t": TYPES["uchar_t"], "ushort_t": _int("ushort_t", 2, False), "ulong_t": _int("ulong_t", 8, False),
    "u_char": _int("u_char", 1, False), "u_short": _int("u_short", 2, False), "u_int": _int("u_int", 4, False),
    "u_long": _int("u_long", 8, False), "processorid_t": TYPES["processorid_t"], "off_t": _int("off_t", 8, True),
    "time_t": _int("time_t", 8, True), "dev_t": _int("dev_t", 8, False), "mode_t": _int("mode_t", 2, False),
    "boolean_t": _int("boolean_t", 4, True), "vm_offset_t": _int("vm_offset_t", 8, False),
    "vm_paddr_t": _int("vm_paddr_t", 8, False), "vm_pindex_t": _int("vm_pindex_t", 8, False),
    "vm_ooffset_t": _int("vm_ooffset_t", 8, True), "vm_size_t": _int("vm_size_t", 8, False),
    "vm_prot_t": _int("vm_prot_t", 1, False), "register_t": _int("register_t", 8, True),
    "caddr_t": pointer_to(CHAR),
    # Solaris names D's own libraries and scripts use (dt_open.c's intrinsics, sys/int_types.h, inet/ip.h).
    "hrtime_t": _int("hrtime_t", 8, True), "longlong_t": _int("longlong_t", 8, True),
    "u_longlong_t": _int("u_longlong_t", 8, False), "ipaddr_t": _int("ipaddr_t", 4, False),
}  # fmt: skip

# dt_decl.c's combinations of the basic type words (as a sorted word multiset) and the type each makes.
_BASIC: dict[tuple[str, ...], DType] = {}
for _words, _type in [
    ("char", CHAR), ("signed char", CHAR), ("unsigned char", TYPES["unsigned char"]),
    ("short", TYPES["short"]), ("short int", TYPES["short"]), ("signed short", TYPES["short"]),
    ("signed short int", TYPES["short"]), ("unsigned short", TYPES["unsigned short"]),
    ("unsigned short int", TYPES["unsigned short"]), ("int", INT), ("signed", INT), ("signed int", INT),
    ("unsigned", UINT), ("unsigned int", UINT), ("long", TYPES["long"]), ("long int", TYPES["long"]),
    ("signed long", TYPES["long"]), ("signed long int", TYPES["long"]), ("unsigned long", TYPES["unsigned long"]),
    ("unsigned long int", TYPES["unsigned long"]), ("long long", TYPES["long long"]),
    ("long long int", TYPES["long long"]), ("signed long long", TYPES["long long"]),
    ("signed long long int", TYPES["long long"]), ("unsigned long long", TYPES["unsigned long long"]),
    ("unsigned long long int", TYPES["unsigned long long"]), ("void", VOID), ("string", STRING),
    ("float", FLOAT_TYPES["float"]), ("double", FLOAT_TYPES["double"]),
    ("long double", FLOAT_TYPES["long double"]),
]:  # fmt: skip
    _BASIC[tuple(sorted(_words.split()))] = _type


def basic_type(words: list[str]) -> DType | str:
    """The type the basic words name, or the D_DECL_* message dt_decl.c gives for a bad combination."""
    found = _BASIC.get(tuple(sorted(words)))
    if found is not None:
        return found
    if "char" in words and ("short" in words or "long" in words):
        return "invalid type declaration: short and long may not be used with char type"
    if "void" in words and len(words) > 1:
        return "invalid type declaration: attributes may not be used with void type"
    return "invalid type combination"


def modifier_error(words: list[str], named: DType) -> str | None:
    """What dt_decl.c says when short/long/signed/unsigned qualify a named type (a typedef, struct, ...)."""
    if any(w in ("signed", "unsigned") for w in words) and (not named.is_int or isinstance(named, PointerType)):
        return "invalid type declaration: signed and unsigned may only be used with integer type"
    if any(w in ("short", "long") for w in words) and (not named.is_int or isinstance(named, PointerType)):
        return "invalid type declaration: long and long long may only be used with integer or floating-point type"
    if words:
        return "invalid type combination"
    return None


def is_scalar(dtype: DType) -> bool:
    return dtype.kind == "int"


def is_object(dtype: DType) -> bool:
    """A type whose value lives in memory and is handled by its address (struct, union, array)."""
    return dtype.kind in ("struct", "union", "array")


def integer_of(size: int, signed: bool) -> DType:
    return {
        (1, True): CHAR,
        (2, True): TYPES["short"],
        (4, True): INT,
        (8, True): INT64,
        (4, False): UINT,
        (8, False): UINT64,
    }.get((size, signed), _int(f"{'' if signed else 'u'}int{size * 8}_t", size, signed))


_TYPEDEF = re.compile(r"\btypedef\b")


def typedef_names(text: str) -> dict[str, list[tuple[int, int]]]:
    """The names a program's typedefs declare, each with the spans of the typedefs that declare it, found before
    parsing: D's lexer, as C's, must know a type name to read `(new_int) x` as a cast (dt_lex.l returns
    DT_TOK_TNAME for them); a name is a type name only after its first typedef, and not as a typedef's own name."""
    names: dict[str, list[tuple[int, int]]] = {}
    for match in _TYPEDEF.finditer(text):
        depth, position = 0, match.end()
        while position < len(text):
            char = text[position]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == ";" and depth <= 0:
                break
            position += 1
        tail = re.sub(r"\[[^\]]*\]", "", text[match.end() : position])
        for part in _top_level_commas(tail):
            found = re.findall(r"[A-Za-z_]\w*", part)
            if found:
                names.setdefault(found[-1], []).append((match.start(), position))
    return names


def _top_level_commas(text: str) -> list[str]:
    """The declarators of `typedef ... a, *b;`: text split at commas outside braces (the body's last one holds
    the first declarator after its closing brace)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "{"
        depth -= char == "}"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p[p.rfind("}") + 1 :] for p in parts]
