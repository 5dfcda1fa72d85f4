"""The system-call table, generated from syscalls.master at start-up as makesyscalls generates init_sysent.c.

"If this looks like RPC stub generation... that's because it is" (the lecture): each entry gives the number, the
audit event, the type flags and a C prototype, from which the argument count and the handler name follow.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

MASTER = Path(__file__).with_name("syscalls.master")

SYF_CAPENABLED = 0x00000001  # sys/sys/sysent.h: allowed in capability mode
SY_THR_STATIC = 0x01  # the syscall's module can never be unloaded, so no drain barrier is needed

TYPES = {"STD", "SYSMUX", "OBSOL", "RESERVED", "UNIMPL", "NOSTD", "NOARGS", "NODEF", "NOPROTO", "NOLIB",
         "NOTSTATIC", "COMPAT", *(f"COMPAT{n}" for n in range(4, 15))}  # fmt: skip
MODIFIERS = {"CAPENABLED", "NORETURN"}

_PROTOTYPE = re.compile(r"^\s*(?P<ret>[\w\s\*]+?)\s*\b(?P<name>\w+)\s*\((?P<params>.*)\)\s*;\s*$", re.S)
_ANNOTATION = re.compile(r"_\w+_(\([^()]*\))?\s*")


class SyscallsMasterError(ValueError):
    """syscalls.master does not parse; the message names the line."""


@dataclass(frozen=True)
class Syscall:
    """One sysent entry: struct sysent plus the names syscalls.c and sysproto.h would carry."""

    code: int
    audit_event: str
    type: str
    modifiers: frozenset[str]
    name: str
    return_type: str
    params: tuple[tuple[str, str], ...]  # (C type, name), annotations stripped

    @property
    def narg(self) -> int:
        return len(self.params)

    @functools.cached_property
    def param_names(self) -> tuple[str, ...]:
        """The parameters' names, for the "syscall" event (a cached_property: each call's event shares them)."""
        return tuple(name for _, name in self.params)

    @property
    def sy_flags(self) -> int:
        return SYF_CAPENABLED if "CAPENABLED" in self.modifiers else 0

    @property
    def noreturn(self) -> bool:
        return "NORETURN" in self.modifiers

    @property
    def sy_thrcnt(self) -> int:
        return SY_THR_STATIC  # everything here is compiled into the kernel, never a loadable module


def _parse_params(text: str, where: str) -> tuple[tuple[str, str], ...]:
    text = _ANNOTATION.sub("", text).strip()
    if text in ("void", ""):
        return ()
    params = []
    for raw in text.split(","):
        raw = " ".join(raw.split())
        if raw == "...":
            continue
        match = re.match(r"^(?P<type>.*?[\s\*])(?P<name>\w+)$", raw)
        if not match:
            raise SyscallsMasterError(f"{where}: cannot read parameter {raw!r}")
        params.append((match["type"].strip(), match["name"]))
    return tuple(params)


def parse_syscalls_master(text: str, source: str = "syscalls.master") -> dict[int, Syscall]:
    table: dict[int, Syscall] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].split(";", 1)[0] if lines[i].lstrip().startswith(";") else lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        start_line = i
        head, brace, rest = line.partition("{")
        fields = head.split()
        if len(fields) != 3 or not brace:
            raise SyscallsMasterError(f"{source}:{start_line}: expected 'number audit-event type {{'")
        body = rest
        while "}" not in body:
            if i >= len(lines):
                raise SyscallsMasterError(f"{source}:{start_line}: unterminated '{{'")
            body += "\n" + lines[i]
            i += 1
        prototype = body.split("}", 1)[0]
        number_text, audit_event, type_text = fields
        if not number_text.isdigit():
            raise SyscallsMasterError(f"{source}:{start_line}: system-call number {number_text!r} is not a number")
        kinds = type_text.split("|")
        if kinds[0] not in TYPES or not set(kinds[1:]) <= MODIFIERS:
            raise SyscallsMasterError(f"{source}:{start_line}: unknown type {type_text!r}")
        match = _PROTOTYPE.match(" ".join(prototype.split()))
        if not match:
            raise SyscallsMasterError(f"{source}:{start_line}: cannot read prototype {prototype.strip()!r}")
        code = int(number_text)
        if code in table:
            raise SyscallsMasterError(f"{source}:{start_line}: system call {code} is listed twice")
        table[code] = Syscall(
            code=code,
            audit_event=audit_event,
            type=kinds[0],
            modifiers=frozenset(kinds[1:]),
            name=match["name"],
            return_type=" ".join(match["ret"].split()),
            params=_parse_params(match["params"], f"{source}:{start_line}"),
        )
    return table


def load_sysent() -> dict[int, Syscall]:
    return parse_syscalls_master(MASTER.read_text(), str(MASTER.name))


SYSCALLS = load_sysent()
SYS = {entry.name: code for code, entry in SYSCALLS.items()}  # sys/sys/syscall.h: SYS_getpid == 20, ...
