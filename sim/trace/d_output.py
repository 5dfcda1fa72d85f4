"""What dtrace(1) prints, byte for byte: aggregations, histograms, stacks, trace() and printf().

The formats follow libdtrace's consumer (dt_consume.c: dt_print_aggs, dt_print_datum, dt_print_quantize,
dt_print_lquantize, dt_print_stack, dt_print_bytes) and its sort (dt_aggregate.c: dt_aggregate_varvalcmp,
dt_aggregate_valcmp, dt_aggregate_keycmp), and the dtrace command itself (dtrace.c: chew, chewrec, main):

- a record line without -q starts with "%3d %6d %32s " (CPU, probe ID, FUNCTION:NAME) under a one-time header
  "%3s %6s %32s\\n", and ends with "\\n";
- printa(@a) prints "\\n", then each entry, sorted ascending by value, ties broken by key: each key as
  "  %-50s" (strings), " %16lld"/" %8d" (64/32-bit integers) or a stack, then the value as " %16lld", then "\\n";
- quantize() and lquantize() values are ASCII histograms: "\\n%16s %41s %-9s\\n" then a row per bucket,
  "%16lld |" + "@" x round(40 * count / total) + padding + " %-9lld\\n";
- stack() prints "\\n" and then each frame indented by 14 spaces, one per line, leaf first;
- when tracing stops, dtrace prints "\\n" and then every aggregation no printa() has printed.
"""

# ruff: noqa: UP031 - dtrace's C printf formats are kept verbatim (" %16lld" -> " %16d") so they can be checked
# against dt_consume.c line by line.
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

from sim.trace import d_llquantize
from sim.trace.providers import STACK_FRAMES, Probe, StackValue

STACK_INDENT = 14  # _dtrace_stkindent
QUANTIZE_NBUCKETS = 127  # (64 - 1) * 2 + 1 power-of-two buckets, negative and positive
QUANTIZE_ZEROBUCKET = 63
BAR = 40  # width of a histogram bar
DISTRIBUTION = "------------- Distribution -------------"


# --- types --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DType:
    """A D type as far as printing and checking need it: integers by size and signedness, strings, stacks."""

    name: str
    kind: str  # "int", "string", "stack" or "void"
    size: int = 8
    signed: bool = True

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    def wrap(self, value: int) -> int:
        """The value as this integer type holds it (two's complement, C's conversions)."""
        bits = self.size * 8
        value &= (1 << bits) - 1
        if self.signed and value >> (bits - 1):
            value -= 1 << bits
        return value


INT = DType("int", "int", 4, True)
UINT = DType("uint_t", "int", 4, False)
INT64 = DType("int64_t", "int", 8, True)
UINT64 = DType("uint64_t", "int", 8, False)
CHAR = DType("char", "int", 1, True)
STRING = DType("string", "string", 256)
STACK = DType("stack", "stack", STACK_FRAMES * 8)
VOID = DType("void", "void", 0)

TYPES = {
    "char": CHAR, "signed char": CHAR, "int8_t": CHAR,
    "unsigned char": DType("uchar_t", "int", 1, False), "uchar_t": DType("uchar_t", "int", 1, False),
    "uint8_t": DType("uint8_t", "int", 1, False),
    "short": DType("short", "int", 2, True), "int16_t": DType("int16_t", "int", 2, True),
    "unsigned short": DType("ushort_t", "int", 2, False), "uint16_t": DType("uint16_t", "int", 2, False),
    "int": INT, "signed": INT, "int32_t": DType("int32_t", "int", 4, True),
    "unsigned": UINT, "unsigned int": UINT, "uint_t": UINT, "uint32_t": DType("uint32_t", "int", 4, False),
    "long": DType("long", "int", 8, True), "long long": DType("long long", "int", 8, True), "int64_t": INT64,
    "unsigned long": DType("unsigned long", "int", 8, False),
    "unsigned long long": DType("unsigned long long", "int", 8, False), "uint64_t": UINT64,
    "uintptr_t": DType("uintptr_t", "int", 8, False), "size_t": DType("size_t", "int", 8, False),
    "ssize_t": DType("ssize_t", "int", 8, True), "pid_t": DType("pid_t", "int", 4, True),
    "id_t": DType("id_t", "int", 8, True), "uid_t": DType("uid_t", "int", 4, False),
    "processorid_t": DType("processorid_t", "int", 4, True),
}  # fmt: skip


def promote(a: DType, b: DType) -> DType:
    """C's usual arithmetic conversions for two integer types."""
    if a.size < 4 and b.size < 4:
        return INT
    if a.size != b.size:
        wider = a if a.size > b.size else b
        return wider if wider.size >= 4 else INT
    if not a.signed:
        return a
    if not b.signed:
        return b
    return a if a.size >= 4 else INT


# --- record lines -------------------------------------------------------------------------------------------


def header() -> str:
    return "%3s %6s %32s\n" % ("CPU", "ID", "FUNCTION:NAME")


def record_prefix(probe: Probe, cpu: int = 0) -> str:
    return "%3d %6d %32s " % (cpu, probe.id, f"{probe.function}:{probe.name}")


def format_trace(value: object, dtype: DType, quiet: bool) -> str:
    """trace(): integers by their size, strings as dt_print_bytes prints a NUL-terminated string."""
    if dtype.kind == "string":
        return str(value) if quiet else "  %-33s" % value
    if dtype.kind == "stack":
        return format_stack(value)  # type: ignore[arg-type]
    if quiet:
        return "%d" % _as_printed(value, dtype)  # type: ignore[arg-type]
    return " %*d" % (_INT_WIDTH[dtype.size], _as_printed(value, dtype))  # type: ignore[arg-type]


_INT_WIDTH = {8: 16, 4: 8, 2: 5, 1: 3}


def _as_printed(value: int, dtype: DType) -> int:
    """A value as dt_print_datum/dt_consume_cpu read its bytes: 1- and 2-byte values through uint8_t/uint16_t
    (so (char)-2 prints 254), 4- and 8-byte values as signed (%d of a uint32_t, %lld)."""
    if dtype.size < 4:
        return value & ((1 << (8 * dtype.size)) - 1)
    return DType("", "int", dtype.size, True).wrap(value)


def format_stack(stack: StackValue) -> str:
    return "\n" + "".join(" " * STACK_INDENT + frame + "\n" for frame in stack)


# --- printf -------------------------------------------------------------------------------------------------

# flags, width (a number, '*': the next argument, '?': a pointer's width), '@' (printa's value), precision, size
_CONVERSION = re.compile(r"%([-+ #0@]*)([0-9]+|\*|\?)?(@?)(?:\.([0-9]+|\*))?(hh|h|ll|l|L|j|z|t|q)?([diouxXcspYak%])")
POINTER_WIDTH = 16  # '%?': the width of a pointer in hex on LP64 (dt_printf.c)
INT_CONVERSIONS = set("diouxXc")
# A conversion's width and precision: a wider one would have one printf() make gigabytes of padding.
MAX_PRINTF_WIDTH = 1024


@dataclass(frozen=True)
class Conversion:
    text: str  # the conversion as written
    flags: str
    width: str
    precision: str
    letter: str
    aggregation: bool  # %@...: the aggregation's value in printa()

    def python_spec(self, letter: str) -> str:
        width = self.width or ""
        precision = f".{self.precision}" if self.precision else ""
        return f"%{self.flags}{width}{precision}{letter}"


@dataclass(frozen=True)
class Format:
    """A printf()/printa() format string split into literal text and conversions."""

    pieces: tuple[str | Conversion, ...]

    @classmethod
    def parse(cls, text: str) -> Format:
        pieces: list[str | Conversion] = []
        position = 0
        for match in _CONVERSION.finditer(text):
            if match.start() > position:
                pieces.append(text[position : match.start()])
            flags, width, at, precision, _length, letter = match.groups()
            if letter == "%" and match.group(0) == "%%":
                pieces.append("%")
            elif letter == "%":
                raise ValueError(f"invalid format conversion {_cropped(match.group(0))}")
            else:
                width = str(POINTER_WIDTH) if width == "?" else width
                for part, value in (("width", width), ("precision", precision)):
                    if value and value != "*" and (len(value) > 6 or int(value) > MAX_PRINTF_WIDTH):
                        raise ValueError(
                            f"conversion {_cropped(match.group(0))}: {part} {_cropped(value)} is over the "
                            f"limit of {MAX_PRINTF_WIDTH:,}"
                        )
                aggregation = "@" in flags or at == "@"
                flags = flags.replace("@", "")
                pieces.append(Conversion(match.group(0), flags, width or "", precision or "", letter, aggregation))
            position = match.end()
        if position < len(text):
            pieces.append(text[position:])
        literal = "".join(p for p in pieces if isinstance(p, str) and p != "%")
        if "%" in literal:
            stray = literal[literal.index("%") :][:4]
            raise ValueError(f"invalid format conversion at '{stray}'")
        return cls(tuple(pieces))

    @property
    def conversions(self) -> list[Conversion]:
        return [p for p in self.pieces if isinstance(p, Conversion) and not p.aggregation]

    @property
    def slots(self) -> list[tuple[Conversion, str]]:
        """The arguments the format takes, in order: (conversion, "width" | "precision" | "value"); a '*'
        width or precision takes an argument of its own before the value."""
        out = []
        for conversion in self.conversions:
            out.extend((conversion, part) for part in ("width", "precision") if getattr(conversion, part) == "*")
            out.append((conversion, "value"))
        return out

    def render(self, values: list[tuple[object, DType]], aggregation=None) -> str:
        """Fill the conversions with `values` in order; %@ conversions call `aggregation(conversion)`."""
        out: list[str] = []
        arguments = iter(values)
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            elif piece.aggregation:
                out.append(aggregation(piece) if aggregation else "")
            else:
                if piece.width == "*" or piece.precision == "*":
                    piece = _resolved(piece, arguments)
                value, dtype = next(arguments)
                out.append(convert(piece, value, dtype))
        return "".join(out)


def _resolved(conversion: Conversion, arguments) -> Conversion:
    """A conversion with its '*' width and precision taken from the arguments (a negative width left-justifies,
    a negative precision is none, as in C)."""
    flags, width, precision = conversion.flags, conversion.width, conversion.precision
    if width == "*":
        number = int(next(arguments)[0])
        if number < 0:
            flags, number = flags + "-", -number
        width = str(number)
    if precision == "*":
        number = int(next(arguments)[0])
        precision = str(number) if number >= 0 else ""
    for part, value in (("width", width), ("precision", precision)):
        if value and int(value) > MAX_PRINTF_WIDTH:
            raise ValueError(
                f"{part} {value} of conversion {conversion.text} is over the limit of {MAX_PRINTF_WIDTH:,}"
            )
    return replace(conversion, flags=flags, width=width, precision=precision)


def _cropped(text: str, most: int = 16) -> str:
    """A conversion as a message quotes it: at most `most` characters of it."""
    return text if len(text) <= most else text[:most] + "..."


def convert(conversion: Conversion, value: object, dtype: DType) -> str:
    letter = conversion.letter
    if letter == "k" or dtype.kind == "stack":
        return format_stack(value)  # type: ignore[arg-type]
    if letter == "s":
        return conversion.python_spec("s") % value
    if letter == "Y":
        seconds, ns = divmod(int(value), 1_000_000_000)  # type: ignore[call-overload]
        text = time.strftime("%Y %b %e %H:%M:%S", time.gmtime(seconds))
        return conversion.python_spec("s") % text
    number = int(value)  # type: ignore[call-overload]
    if letter == "c":
        return conversion.python_spec("c") % chr(number & 0xFF)
    if letter == "a":
        return conversion.python_spec("s") % f"0x{number & 0xFFFFFFFFFFFFFFFF:x}"
    # dt_printf.c reads the argument's record at its size: %i signed (pfprint_sint), %d signed only for a signed
    # type (pfcheck_dint makes it %u otherwise), %u %o %x %X and %p (printf's %x) unsigned (pfprint_uint).
    unsigned = number & ((1 << (8 * dtype.size)) - 1)
    if letter in "ouxXp":
        return conversion.python_spec("x" if letter == "p" else letter) % unsigned
    if letter == "d" and not dtype.signed:
        return conversion.python_spec("d") % unsigned
    return conversion.python_spec("d") % DType("", "int", dtype.size, True).wrap(unsigned)


# --- aggregations -------------------------------------------------------------------------------------------

AGGREGATING_FUNCTIONS = ("count", "sum", "avg", "min", "max", "stddev", "quantize", "lquantize", "llquantize")
HISTOGRAMS = ("quantize", "lquantize", "llquantize")
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def quantize_bucket_value(bucket: int) -> int:
    """DTRACE_QUANTIZE_BUCKETVAL: the lower bound of a power-of-two bucket (negative buckets below zero)."""
    if bucket < QUANTIZE_ZEROBUCKET:
        return -(1 << (QUANTIZE_ZEROBUCKET - 1 - bucket))
    if bucket == QUANTIZE_ZEROBUCKET:
        return 0
    return 1 << (bucket - QUANTIZE_ZEROBUCKET - 1)


def quantize_bucket(value: int) -> int:
    """The bucket dtrace_aggregate_quantize() adds a value to."""
    if value == 0:
        return QUANTIZE_ZEROBUCKET
    if value > 0:
        return min(QUANTIZE_ZEROBUCKET + value.bit_length(), QUANTIZE_NBUCKETS - 1)
    return max(QUANTIZE_ZEROBUCKET - (-value).bit_length(), 0)


class Buckets(dict):
    """A quantize()/lquantize() value, sparse: bucket index -> count, only the buckets values fell in are stored
    (an lquantize with 65,535 levels would otherwise cost half a megabyte a key). Reading any other reads 0."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size  # buckets in all: 127 for quantize(), levels + 2 for lquantize()

    def __missing__(self, bucket: int) -> int:
        return 0

    def used(self) -> list[int]:
        """The indexes of the non-empty buckets, in order."""
        return sorted(bucket for bucket, count in self.items() if count)


@dataclass
class Aggregation:
    """One aggregation variable: its aggregating function, key types and data (key tuple -> accumulator)."""

    name: str
    varid: int
    function: str
    key_types: tuple[DType, ...]
    line: int
    base: int = 0  # lquantize
    step: int = 1
    levels: int = 0
    data: dict[tuple, object] = field(default_factory=dict)
    printed: bool = False
    normal: int = 1  # normalize()'s factor: what it prints is divided by it
    llq: d_llquantize.Params | None = None  # llquantize()'s factor, low, high, nsteps

    def zero(self) -> object:
        f = self.function
        if f in ("count", "sum"):
            return 0
        if f == "min":
            return INT64_MAX
        if f == "max":
            return INT64_MIN
        if f == "avg":
            return [0, 0]
        if f == "stddev":
            return [0, 0, 0]
        if f == "quantize":
            return Buckets(QUANTIZE_NBUCKETS)
        if f == "llquantize":
            return Buckets(d_llquantize.bucket_count(self.llq))
        return Buckets(self.levels + 2)

    def histogram_bucket(self, value: int) -> int:
        """The bucket an lquantize() or llquantize() value falls in."""
        if self.function == "llquantize":
            return d_llquantize.bucket(self.llq, value)
        return self.lquantize_bucket(value)

    def lquantize_bucket(self, value: int) -> int:
        if value < self.base:
            return 0
        level = (value - self.base) // self.step
        return level + 1 if level < self.levels else self.levels + 1

    # -- values --

    def value(self, datum: object) -> int:
        """The number an entry prints (and sorts by) for the scalar functions."""
        f = self.function
        if f == "avg":
            count, total = datum  # type: ignore[misc]
            return _c_div(total, count) if count else 0
        if f == "stddev":
            return stddev(datum) if datum[0] else 0  # type: ignore[index]
        return datum  # type: ignore[return-value]

    def _value_sort_key(self, datum: object) -> tuple:
        f = self.function
        if f == "quantize":
            total = sum(quantize_bucket_value(i) * n for i, n in datum.items())  # type: ignore[union-attr]
            return (total, datum[QUANTIZE_ZEROBUCKET])  # type: ignore[index]
        if f == "lquantize":
            return (self._lquantize_sum(datum), self._lquantize_zero(datum))  # type: ignore[arg-type]
        if f == "llquantize":
            return (d_llquantize.weighted_sum(self.llq, datum),)
        return (self.value(datum),)

    def _lquantize_value(self, bucket: int) -> int:
        """The value dt_aggregate_lquantizedsum weighs a bucket's count by."""
        if bucket == 0:
            return self.base - 1
        if bucket == self.levels + 1:
            return self.base + self.levels * self.step + 1
        return self.base + (bucket - 1) * self.step

    def _lquantize_sum(self, data: Buckets) -> int:
        return sum(self._lquantize_value(bucket) * count for bucket, count in data.items())

    def _lquantize_zero(self, data: Buckets) -> int:
        """The count of the bucket whose value is 0 (dt_aggregate_lquantizedzero), 0 if there is none."""
        if self.base - 1 == 0:
            return data[0]
        if self.base <= 0 and -self.base % self.step == 0 and -self.base // self.step < self.levels:
            return data[-self.base // self.step + 1]
        return data[self.levels + 1] if self.base + self.levels * self.step + 1 == 0 else 0

    def _key_sort_key(self, key: tuple) -> tuple:
        parts = []
        for component, dtype in zip(key, self.key_types, strict=True):
            if dtype.kind == "string":
                parts.append(str(component).encode())
            elif dtype.kind == "stack":
                pcs = component.pcs()  # type: ignore[attr-defined]
                parts.append(b"".join(pc.to_bytes(8, "little") for pc in pcs).ljust(STACK.size, b"\0"))
            else:
                parts.append(component & ((1 << (8 * dtype.size)) - 1))  # type: ignore[operator]
        return tuple(parts)

    def sorted_entries(self, by_key: bool = False, reverse: bool = False) -> list[tuple[tuple, object]]:
        """Entries in dtrace's default order: by value, then by key (aggsortkey: key first)."""

        def order(item: tuple[tuple, object]) -> tuple:
            value, key = self._value_sort_key(item[1]), self._key_sort_key(item[0])
            return (key, value) if by_key else (value, key)

        return sorted(self.data.items(), key=order, reverse=reverse)

    # -- printing --

    def render_entry(self, key: tuple, datum: object) -> str:
        return self.render_keys(key) + self.render_value(datum) + "\n"

    def render_keys(self, key: tuple) -> str:
        return "".join(format_key(component, dtype) for component, dtype in zip(key, self.key_types, strict=True))

    def render_value(self, datum: object) -> str:
        """An entry's value as printa() prints it without a format: a histogram, or the number in 16 columns."""
        if self.function in HISTOGRAMS:
            return self._histogram(datum)  # type: ignore[arg-type]
        return " %16d" % DType("", "int", 8, True).wrap(normalized(self.value(datum), self.normal))

    def _histogram(self, data: Buckets) -> str:
        if self.function == "quantize":
            return format_quantize(data, self.normal)
        if self.function == "lquantize":
            return format_lquantize(data, self.base, self.step, self.levels, self.normal)
        quantline = lambda *row: _quantline(*row, self.normal)  # noqa: E731
        return d_llquantize.render(self.llq, data, quantline, _histogram_header)

    def value_text(self, datum: object, conversion: Conversion) -> str:
        """The %@ conversion of a formatted printa(): a number, or the whole histogram."""
        if self.function in HISTOGRAMS:
            return self._histogram(datum)  # type: ignore[arg-type]
        return convert(conversion, normalized(self.value(datum), self.normal), INT64)


def format_key(component: object, dtype: DType) -> str:
    if dtype.kind == "string":
        return "  %-50s" % component
    if dtype.kind == "stack":
        return format_stack(component)  # type: ignore[arg-type]
    return " %*d" % (_INT_WIDTH[dtype.size], _as_printed(component, dtype))  # type: ignore[arg-type]


def stddev(datum: list[int]) -> int:
    """dt_stddev(): sqrt(avg(x^2) - avg(x)^2) in integers, as libdtrace computes it."""
    count, total, squares = datum
    avg_of_squares = squares // count
    norm_avg = abs(_c_div(total, count))
    difference = (avg_of_squares - norm_avg * norm_avg) % (1 << 128)
    return _isqrt(difference) & 0xFFFFFFFFFFFFFFFF


def _isqrt(n: int) -> int:
    import math

    return math.isqrt(n)


def _c_div(a: int, b: int) -> int:
    """C's integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _quantline(value: int, total: int, positives: bool, negatives: bool, normal: int = 1) -> str:
    """dt_print_quantline(): one histogram bar and its count; the bar is the count's share of the total, the count
    is printed divided by normalize()'s factor."""
    ats, spaces = "@" * BAR, " " * BAR
    shown = normalized(value, normal)

    def depth(length: int) -> int:
        # (uint)(|value| * length / total + 0.5), exactly: the long double result never lands nearer
        return (2 * abs(value) * length + total) // (2 * total) if total else 0

    if not negatives:
        d = depth(BAR) if positives else 0
        return "|%s%s %-9d\n" % (ats[BAR - d :], spaces[d:], shown)
    if not positives:
        d = depth(BAR)
        return "%s%s| %-9d\n" % (spaces[d:], ats[BAR - d :], shown)
    half = BAR // 2
    d = depth(half)
    if value <= 0:
        return "%s%s|%*s %-9d\n" % (spaces[BAR - half + d :], ats[BAR - d :], half, "", shown)
    return "%20s|%s%s %-9d\n" % ("", ats[BAR - d :], spaces[BAR - half + d :], shown)


def normalized(value: int, normal: int) -> int:
    """dt_print_datum's `(long long)value / normal`: a division of unsigned 64-bit numbers (normal is a uint64_t),
    printed as signed."""
    if normal == 1:
        return value
    return DType("", "int", 8, True).wrap((value & 0xFFFFFFFFFFFFFFFF) // normal)


def _histogram_header() -> str:
    return "\n%16s %41s %-9s\n" % ("value", DISTRIBUTION, "count")


def format_quantize(data: Buckets, normal: int = 1) -> str:
    """dt_print_quantize(): rows from one bucket below the first non-empty bucket to one above the last."""
    used = data.used()
    # dt_print_quantize's scan for the first non-empty bucket stops short of the last one, so a value only
    # there prints as no value at all: kept, as dtrace prints it.
    first = used[0] if used else QUANTIZE_NBUCKETS - 1
    if first == QUANTIZE_NBUCKETS - 1:
        first, last = QUANTIZE_ZEROBUCKET - 1, QUANTIZE_ZEROBUCKET + 1
    else:
        first, last = max(first - 1, 0), min(used[-1] + 1, QUANTIZE_NBUCKETS - 1)
    rows = [data[i] for i in range(first, last + 1)]
    positives, negatives = any(v > 0 for v in rows), any(v < 0 for v in rows)
    total = sum(abs(v) for v in rows)
    out = [_histogram_header()]
    for i in range(first, last + 1):
        out.append("%16d " % quantize_bucket_value(i))
        out.append(_quantline(data[i], total, positives, negatives, normal))
    return "".join(out)


def format_lquantize(data: Buckets, base: int, step: int, levels: int, normal: int = 1) -> str:
    """dt_print_lquantize(): like quantize, with '< base' and '>= base + levels * step' end rows."""
    used = data.used()
    if not used:
        first, last = 0, 2
    else:
        first, last = max(used[0] - 1, 0), min(used[-1] + 1, levels + 1)
    rows = [data[i] for i in range(first, last + 1)]
    positives, negatives = any(v > 0 for v in rows), any(v < 0 for v in rows)
    total = sum(abs(v) for v in rows)
    out = [_histogram_header()]
    for i in range(first, last + 1):
        if i == 0:
            out.append("%16s " % f"< {base}")
        elif i == levels + 1:
            out.append("%16s " % f">= {base + levels * step}")
        else:
            out.append("%16d " % (base + (i - 1) * step))
        out.append(_quantline(data[i], total, positives, negatives, normal))
    return "".join(out)
