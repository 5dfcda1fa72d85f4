"""What the dtrace command does to a program before it compiles, and its listing of probes (dtrace -l).

- Macro arguments (dt_lex.l, dt_pcb): the words after the options are $1, $2, ...; `$N` in the program is the N-th
  as a token (a number stays a number, anything else is an identifier), `$$N` is it as a string; `$0` is the
  script's name. A referenced argument that was not given is an error (D_MACRO_UNDEF), and so is an argument the
  program never references (D_MACRO_UNUSED), unless the defaultargs option is set (then missing ones are 0 or "").
  Inside strings and comments `$` is an ordinary character.
- `-x NAME[=VALUE]` sets an option as `#pragma D option` does, before the program's own pragmas (which win).
- `-l` lists the probes that descriptions match, in dtrace -l's columns ("%5d %10s %17s %33s %s").
"""

from __future__ import annotations

import re

from sim.trace.d_options import UNSET, OptionError, option_value
from sim.trace.d_parser import CompileError, DtraceError
from sim.trace.providers import Probe, ProbeCatalog, split_description

_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|\$\$(\d+)|\$(\d+)|\$([a-z]+)\b', re.S)
_NUMBER = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*")


def expand_macros(
    text: str, arguments: list[str], script_name: str, defaults: bool = False, variables: dict[str, int] | None = None
) -> str:
    """The program with its $N and $$N replaced by the macro arguments (arguments[0] is $1), and its macro
    variables ($target, $pid, ...: d_grab.macro_variables) by their values."""
    values = [script_name, *arguments]
    used: set[int] = set()

    def replace(match: re.Match) -> str:
        quoted, bare, named = match.group(1), match.group(2), match.group(3)
        if named is not None:
            if variables is None or named not in variables:
                line = text.count("\n", 0, match.start()) + 1
                raise CompileError(f"macro variable ${named} is not defined", line)
            return str(variables[named])
        if quoted is None and bare is None:
            return match.group(0)  # a string or a comment: left as it is
        number = int(quoted if quoted is not None else bare)
        used.add(number)
        if number >= len(values):
            if not defaults:
                line = text.count("\n", 0, match.start()) + 1
                raise CompileError(f"macro argument {match.group(0)} is not defined", line)
            value = ""
        else:
            value = values[number]
        if quoted is not None:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if not value:
            return "0"
        return value if _NUMBER.fullmatch(value) or value.isidentifier() else f"({value})"

    expanded = _TOKENS.sub(replace, text)
    if not defaults:
        for number, value in enumerate(arguments, 1):
            if number not in used:
                raise CompileError(f"extraneous argument '{value}' (${number} is not referenced)")
    return expanded


def command_options(settings: list[str]) -> dict[str, int | str]:
    """-x NAME[=VALUE] settings as option values; CompileError (worded as dtrace's -x failure) if one is refused."""
    options: dict[str, int | str] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        try:
            parsed = option_value(name, value if "=" in setting else None)
        except OptionError as error:
            raise CompileError(f"failed to set -x {setting}: {str(error).rsplit(': ', 1)[-1]}") from None
        if parsed == UNSET:
            options.pop(name, None)
        else:
            options[name] = parsed
    return options


def list_probes(descriptions: list[str]) -> str:
    """dtrace -l [-n DESCRIPTION ...]: the matching probes (all of them without a description), each once."""
    catalog = ProbeCatalog()
    probes: dict[int, Probe] = {}
    for description in descriptions or [":::"]:
        matched = catalog.match(description)
        if not matched:
            full = ":".join(split_description(description))
            raise DtraceError(
                f"dtrace: invalid probe specifier {description}: probe description {full} does not match any probes"
            )
        probes.update((probe.id, probe) for probe in matched)
    rows = ["%5s %10s %17s %33s %s\n" % ("ID", "PROVIDER", "MODULE", "FUNCTION", "NAME")]  # noqa: UP031
    for probe in sorted(probes.values(), key=lambda p: p.id):
        rows.append("%5d %10s %17s %33s %s\n" % (probe.id, probe.provider, probe.module, probe.function, probe.name))  # noqa: UP031
    return "".join(rows)
