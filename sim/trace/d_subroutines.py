"""D's string and number subroutines (toupper, tolower, strlen, strjoin, strstr, strchr, strrchr, basename,
dirname, strtoll, rand: the string ones that are not plain Python are in d_strings.py) and the
destructive actions (chill, raise, stop, panic, breakpoint).

Each is checked against its prototype as libdtrace's dt_cook_func checks a call (dt_open.c's _dtrace_globals
gives the prototypes) and runs as the kernel's DIF_SUBR_* case runs it (dtrace.c: dtrace_dif_subr):

- strtoll(s[, base]) reads an optional sign and digits of `base` (10 by default; 0x for 16) up to the first
  other character, wrapping past 64 bits as the kernel's loop does; a base outside 2..36 is an illegal
  operation (a runtime error, which fires dtrace:::ERROR);
- rand() is the kernel's generator: (the probe's time * 2416 + 374441) % 1771875;
- chill(ns) is destructive (it needs `#pragma D option destructive`, dtrace -w) and may not spin more than
  500 ms in any second (dtrace_chill_max), else it is an illegal operation. The simulated run is recorded before
  its firings are evaluated, so the spin is counted but adds no time to the run;
- raise(), stop(), panic() and breakpoint() would change the traced system, which a recorded run cannot let a
  D program do: they are checked as dtrace checks them, then refused.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Tree

from sim.trace import d_options, d_strings
from sim.trace.d_interp import DRuntimeError, Expr
from sim.trace.d_output import INT, INT64, STRING, TYPES, DType
from sim.trace.d_parser import CompileError, EnableError
from sim.trace.d_system import DTRACEFLT_ILLOP
from sim.trace.providers import Firing

SIZE_T = TYPES["size_t"]
CHILL_MAX_NS = 500_000_000  # dtrace_chill_max: what chill() may spin per dtrace_chill_interval
CHILL_INTERVAL_NS = 1_000_000_000
# The kernel's toupper()/tolower() change the ASCII letters only
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _where(node: Tree) -> tuple[int | None, int | None]:
    return getattr(node.meta, "line", None), getattr(node.meta, "column", None)


def _check_call(compiler, node: Tree, name: str, args: list[Tree], kinds: tuple[str, ...], required: int):
    """The arguments' Exprs, after libdtrace's prototype checks (D_PROTO_LEN, D_PROTO_ARG)."""
    n = len(args)
    if not required <= n <= len(kinds):
        if n < required:
            expected = f"{'at least ' if required < len(kinds) else ''}{required}"
        else:
            expected = f"{'at most ' if required < len(kinds) else ''}{len(kinds)}"
        raise CompileError(
            f"{name}( ) prototype mismatch: {n} arg{'' if n == 1 else 's'} passed, {expected} expected", *_where(node)
        )
    exprs = []
    for number, (arg, kind) in enumerate(zip(args, kinds, strict=False), 1):
        expr = compiler._expr(arg)
        if expr.type.kind != kind:
            wanted = "string" if kind == "string" else "int"
            raise CompileError(
                f"{name}( ) argument #{number} is incompatible with prototype:\n\tprototype: {wanted}\n"
                f"\t argument: {expr.type.name}",
                *_where(arg),
            )
        exprs.append(expr)
    return exprs


def _subroutine(kinds: tuple[str, ...], required: int, result: DType, implement: Callable):
    """A compiler for a subroutine whose value is implement(*argument values)."""

    def compile_call(compiler, node: Tree, args: list[Tree]):
        name = compiler._callee(node)
        fns = [e.fn for e in _check_call(compiler, node, name, args, kinds, required)]
        if len(fns) == 1:
            (a,) = fns
            return Expr(lambda f: implement(a(f)), result)
        return Expr(lambda f: implement(*(fn(f) for fn in fns)), result)

    return compile_call


def strtoll(text: str, base: int = 10) -> int:
    """DIF_SUBR_STRTOLL: the kernel's loop, digit by digit, in 64-bit two's complement."""
    if not 2 <= base <= 36:
        raise DRuntimeError("illegal operation", DTRACEFLT_ILLOP)
    text = text.lstrip(" \t")
    negative = text[:1] == "-"
    if text[:1] in "+-" and text:
        text = text[1:]
    if base == 16 and text[:2].lower() == "0x":
        text = text[2:]
    value = 0
    for char in text:
        digit = int(char, 36) if char.isascii() and char.isalnum() else 99
        if digit >= base:
            break
        value = (value * base + digit) & 0xFFFFFFFFFFFFFFFF
    return INT64.wrap(-value if negative else value)


def lltostr(value: int, base: int = 10) -> str:
    """DIF_SUBR_LLTOSTR: the digits of a signed value (any base 2..36: unsigned, with 0x for 16 and 0 for 8)."""
    if not 2 <= base <= 36:
        raise DRuntimeError("illegal operation", DTRACEFLT_ILLOP)
    value = INT64.wrap(value)
    negative = base == 10 and value < 0
    number = -value if negative else value & 0xFFFFFFFFFFFFFFFF
    digits = ""
    while True:
        number, digit = divmod(number, base)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if number == 0:
            break
    prefix = "-" if negative else "0x" if base == 16 else "0" if base == 8 and digits != "0" else ""
    return prefix + digits


def compile_setopt(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    """setopt(name[, value]): a consumer action; an option it cannot set is reported, and tracing goes on."""
    exprs = _check_call(compiler, node, "setopt", args, ("string", "string"), 1)
    if args[0].data != "string":
        raise CompileError("setopt( ) argument #1 must be a string constant (the option's name)", *_where(args[0]))
    name, value_fn = exprs[0].const, exprs[1].fn if len(exprs) > 1 else None
    state = compiler.state_ref

    def setopt(f: Firing) -> None:
        st = state[0]
        value = value_fn(f) if value_fn else None
        try:
            setting = d_options.option_value(name, value)
        except d_options.OptionError as error:
            st.errors.append(f'dtrace: couldn\'t set option "{name}": {str(error).split(": ")[-1]}')
            return
        if setting == d_options.UNSET:
            st.options.pop(name, None)
        else:
            st.options[name] = setting
        if name in ("aggsortkey", "aggsortrev", "quiet"):
            setattr(st, name, name in st.options)

    return setopt


def _rand(f: Firing) -> int:
    return (f.t * 2416 + 374441) % 1771875


def compile_rand(compiler, node: Tree, args: list[Tree]):
    _check_call(compiler, node, "rand", args, (), 0)
    return Expr(_rand, INT)


def compile_chill(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
    (duration,) = _check_call(compiler, node, "chill", args, ("int",), 1)
    if "destructive" not in compiler.parsed.options:
        raise EnableError("Destructive actions not allowed")
    state, ns = compiler.state_ref, duration.fn
    spent: dict[int, int] = {}  # chilled ns by dtrace_chill_interval, in the current session
    session: list[object] = [None]

    def chill(f: Firing) -> None:
        if session[0] is not state[0]:  # a new session: nothing chilled yet
            session[0] = state[0]
            spent.clear()
        interval = f.t // CHILL_INTERVAL_NS
        total = spent.get(interval, 0) + max(int(ns(f)), 0)
        if total > CHILL_MAX_NS:
            raise DRuntimeError("illegal operation", DTRACEFLT_ILLOP)
        spent[interval] = total

    return chill


def _refused(kinds: tuple[str, ...]):
    """A destructive action trapscope cannot take: its prototype is checked, then it is refused."""

    def compile_action(compiler, node: Tree, args: list[Tree]) -> Callable[[Firing], None]:
        name = compiler._callee(node)
        _check_call(compiler, node, name, args, kinds, len(kinds))
        raise CompileError(
            f"{name}( ) changes the traced system, which trapscope cannot let a D program do (its runs are "
            "simulated, then traced)",
            *_where(node),
        )

    return compile_action


SUBROUTINES: dict[str, Callable] = {
    "toupper": _subroutine(("string",), 1, STRING, lambda s: s.translate(_UPPER)),
    "tolower": _subroutine(("string",), 1, STRING, lambda s: s.translate(_LOWER)),
    "strlen": _subroutine(("string",), 1, SIZE_T, len),
    "strjoin": _subroutine(("string", "string"), 2, STRING, lambda a, b: a + b),
    "strstr": _subroutine(("string", "string"), 2, STRING, d_strings.strstr),
    "strchr": _subroutine(("string", "int"), 2, STRING, d_strings.strchr),
    "strrchr": _subroutine(("string", "int"), 2, STRING, d_strings.strrchr),
    "basename": _subroutine(("string",), 1, STRING, d_strings.basename),
    "dirname": _subroutine(("string",), 1, STRING, d_strings.dirname),
    "strtoll": _subroutine(("string", "int"), 1, INT64, strtoll),
    "lltostr": _subroutine(("int", "int"), 1, STRING, lltostr),
    "rand": compile_rand,
}
ACTIONS: dict[str, Callable] = {
    "chill": compile_chill,
    "setopt": compile_setopt,
    "raise": _refused(("int",)),
    "stop": _refused(()),
    "panic": _refused(()),
    "breakpoint": _refused(()),
}
