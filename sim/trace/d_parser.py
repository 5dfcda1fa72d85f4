"""Parse a D program into a lark tree, with errors worded and placed as dtrace(1) places them.

The grammar is sim/trace/d_grammar.lark (LALR, contextual lexer). Lines that start with '#' are directives
handled here before parsing, as libdtrace's lexer handles them without the C preprocessor: '#pragma D option
NAME[=VALUE]', and a '#!' interpreter line whose options may include -q. They are blanked, not removed, so that
line numbers in messages stay those of the script.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from sim.trace.d_options import UNSET, OptionError, option_value
from sim.trace.d_types import TYPEDEFS, typedef_names

GRAMMAR = Path(__file__).with_name("d_grammar.lark")
DECLARATIONS = frozenset({"declaration", "untyped_declaration", "typedef", "inline", "translator"})
MAX_SCRIPT_BYTES = 64 * 1024  # a teaching script is a page or two; this bounds parse and compile time
# How deep expressions may nest: the compiler and the compiled program recurse once or twice a level, so this
# keeps both far from Python's recursion limit (1,000 frames); a teaching script nests a dozen levels or so.
MAX_NESTING = 100
# Probe descriptions in a program, over all its clauses: each may match every probe (':::' matches ~600).
MAX_PROBE_DESCRIPTIONS = 256


class DtraceError(ValueError):
    """A D program that cannot run; the message reads as dtrace(1)'s own and names the line (and column).

    `str(error)` is the one-line message dtrace prints; `context` adds the offending source line with a caret
    under the column, for people.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.source = source

    @property
    def context(self) -> str:
        if not self.line or not self.source:
            return ""
        lines = self.source.splitlines()
        if not 1 <= self.line <= len(lines):
            return ""
        text = lines[self.line - 1].replace("\t", " ")
        gutter = f"{self.line:5d} | "
        caret = ""
        if self.column:
            caret = "\n" + " " * (len(gutter) - 2) + "| " + " " * (self.column - 1) + f"^ column {self.column}"
        return gutter + text + caret


class CompileError(Exception):
    """Raised inside the compiler with a bare message and a position; the caller words it as dtrace does."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class EnableError(CompileError):
    """A program that compiles but that dtrace cannot enable: "dtrace: could not enable tracing: MESSAGE"."""


@dataclass
class ParsedProgram:
    tree: Tree
    source: str
    options: dict[str, int | str] = field(default_factory=dict)
    declarations: list[Tree] = field(default_factory=list)  # outside clauses, in order (d_decls.py)


# The program being parsed's own type names, each with the spans of its typedefs (see _type_name).
_PROGRAM_TYPE_NAMES: ContextVar[dict[str, list[tuple[int, int]]] | None] = ContextVar("type_names", default=None)


def _type_name(token: Token) -> Token:
    """A program's type name is an identifier until its first typedef ends, and as the name a typedef declares."""
    spans = (_PROGRAM_TYPE_NAMES.get() or {}).get(str(token))
    if spans and (token.start_pos < spans[0][1] or any(start <= token.start_pos < end for start, end in spans)):
        token.type = "IDENT"
    return token


@lru_cache(maxsize=32)
def _parser(type_names: frozenset[str] = frozenset()) -> Lark:
    """The parser for programs whose typedefs name `type_names`: D's lexer, as C's, must know a type name to read
    `(new_int) x` as a cast (dt_lex.l returns DT_TOK_TNAME for them), and so must lark's."""
    names = sorted(set(TYPEDEFS) | type_names, key=lambda name: (-len(name), name))
    grammar = GRAMMAR.read_text().replace("__no_type_names__", "(?:" + "|".join(names) + ")")
    return Lark(
        grammar,
        lexer_callbacks={"TNAME": _type_name},
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


_PRAGMA = re.compile(r"^\s*#\s*pragma\s+D\s+option\s+([A-Za-z_]+)(?:\s*=\s*(\S+))?\s*$")
_CPP_DIRECTIVES = frozenset({"define", "undef", "include", "if", "ifdef", "ifndef", "elif", "else", "endif"})
_SHEBANG_OPTIONS = re.compile(r"(?:^|\s)-([A-Za-z]+)")


def parse(text: str, from_file: bool) -> ParsedProgram:
    """Parse a D program; `from_file` is true for -s scripts, which must give every probe a body."""
    if len(text.encode()) > MAX_SCRIPT_BYTES:
        raise CompileError(f"the program is {len(text.encode()):,} bytes long; the limit is {MAX_SCRIPT_BYTES:,}")
    options: dict[str, int | str] = {}
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if not stripped.startswith("#"):
            continue
        if number == 1 and stripped.startswith("#!"):
            for cluster in _SHEBANG_OPTIONS.findall(stripped):
                if "q" in cluster:
                    options["quiet"] = 1
        else:
            options.update(_pragma(stripped, number, len(line) - len(stripped) + 1))
        lines[number - 1] = ""
    body = "\n".join(lines)
    type_names = typedef_names(body)
    names = _PROGRAM_TYPE_NAMES.set(type_names)
    try:
        tree = _parser(frozenset(type_names)).parse(body)
    except UnexpectedInput as error:
        raise _syntax_error(error, body) from None
    finally:
        _PROGRAM_TYPE_NAMES.reset(names)
    if not tree.children:
        raise CompileError("empty D program translation unit")
    _check_size(tree)
    declarations = [node for node in tree.children if node.data in DECLARATIONS]
    tree.children = [node for node in tree.children if node.data not in DECLARATIONS]
    for clause in tree.children:
        if clause.data == "predicate_without_actions":
            raise CompileError(
                "expected actions { } following probe description and predicate",
                clause.meta.line,
                clause.meta.column,
            )
    if from_file:
        for clause in tree.children:
            if clause.data == "bare_clause":
                raise CompileError(
                    "expected predicate and/or actions following probe description",
                    clause.meta.line,
                    clause.meta.column,
                )
    return ParsedProgram(tree=tree, source=text, options=options, declarations=declarations)


def _check_size(tree: Tree) -> None:
    """Refuse a program nested deeper than MAX_NESTING or naming more than MAX_PROBE_DESCRIPTIONS probes
    (walked without recursion, so that the walk itself cannot overflow the stack)."""
    descriptions = sum(len(node.children[0].children) for node in tree.children if node.data not in DECLARATIONS)
    if descriptions > MAX_PROBE_DESCRIPTIONS:
        raise CompileError(
            f"the program has {descriptions:,} probe descriptions; the limit is {MAX_PROBE_DESCRIPTIONS}"
        )
    pending: list[tuple[Tree, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_NESTING:
            line, column = getattr(node.meta, "line", None), getattr(node.meta, "column", None)
            raise CompileError(
                f"expressions nest more than {MAX_NESTING} levels deep (the nesting limit)", line, column
            )
        pending.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _pragma(line: str, number: int, column: int) -> dict[str, str]:
    """A control line, as libdtrace's dt_pragma() reads it: `#pragma D option` sets an option; `#pragma ident` and
    `#ident` are ignored (version strings in source files); `#pragma` with a name D does not know is ignored, as a
    C compiler's are; an unknown `#pragma D` name or `#` directive is an error."""
    words = line[1:].split()
    kind = "directive"  # after a naked #
    if words[:1] == ["pragma"]:
        kind, words = "pragma", words[1:]
        if words[:1] == ["D"]:
            kind, words = "D pragma", words[1:]
    if not words:
        return {}  # a null directive (K&R A12.9)
    name = words[0]
    if name == "ident":
        return {}
    if kind == "D pragma" and name == "option":
        return _option(line, number, column)
    if kind == "D pragma" and name in ("attributes", "binding", "depends_on"):
        raise CompileError(f"#pragma D {name} is a real D pragma that trapscope does not support", number, column)
    if kind == "pragma":
        return {}
    if kind == "D pragma":
        raise CompileError(f"invalid D pragma: {name}", number, column)
    hint = " (trapscope runs D without the C preprocessor, -C)" if name in _CPP_DIRECTIVES else ""
    raise CompileError(f"invalid control directive: #{name}{hint}", number, column)


def _option(line: str, number: int, column: int) -> dict[str, int | str]:
    match = _PRAGMA.match(line)
    if not match:
        raise CompileError("malformed #pragma option <option>=<val>", number, column)
    name, value = match.group(1), match.group(2)
    try:
        setting = option_value(name, value)
    except OptionError as error:
        raise CompileError(str(error), number, column) from None
    return {} if setting == UNSET else {name: setting}


def _syntax_error(error: UnexpectedInput, text: str) -> CompileError:
    if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        line, column = _end_position(text)
        return CompileError("syntax error near end of input", line, column)
    if isinstance(error, UnexpectedToken):
        token: Token = error.token
        return CompileError(f'syntax error near "{token.value}"', token.line, token.column)
    if isinstance(error, UnexpectedCharacters):
        near = _word_at(text, error.pos_in_stream)
        if not near.isprintable() or near.isspace():
            return CompileError(f"invalid character (0x{ord(near[0]):02x})", error.line, error.column)
        return CompileError(f'syntax error near "{near}"', error.line, error.column)
    return CompileError(f"syntax error: {error}")


def _word_at(text: str, position: int) -> str:
    match = re.compile(r"[A-Za-z_0-9@]+|\S").match(text, position)
    return match.group(0) if match else text[position : position + 1]


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, column
