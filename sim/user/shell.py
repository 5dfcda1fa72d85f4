"""A command line as a shell reads it: `NAME=value ... program operand ...`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
MAX_COMMAND_LENGTH = 4096


class CommandLineError(ValueError):
    """The command line cannot be run; the message says what is wrong and where."""


@dataclass(frozen=True)
class CommandLine:
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        return self.argv[0]


def parse_command_line(text: str) -> CommandLine:
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandLineError(f"the command line is {len(text)} characters long; the limit is {MAX_COMMAND_LENGTH}")
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise CommandLineError(f"cannot split the command line: {error}") from None
    env = []
    while words and _ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env.append((name, value))
    if not words:
        raise CommandLineError("the command line names no program")
    return CommandLine(env=tuple(env), argv=tuple(words))
