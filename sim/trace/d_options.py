"""dtrace's options (`#pragma D option NAME[=VALUE]`, `dtrace -x NAME[=VALUE]`), read as libdtrace's dt_options.c
reads each kind of value, and refused in its words: "failed to set option 'nspec' to '-72': Invalid value for
specified option".

- sizes (bufsize, specsize, ...): an unsigned number with an optional k, m, g or t suffix (dt_opt_size);
- rates (switchrate, cleanrate, ...): a number with an optional time suffix or "hz" (dt_opt_rate), kept as a
  period in nanoseconds;
- runtime numbers and switches (nspec, quiet, aggsortkeypos, ...): an unsigned number, 1 when no value is given
  (dt_opt_runtime); a switch (quiet, aggsortkey, ...) also takes yes/true/enable(d)/on/set, or
  no/false/disable(d)/off/unset, in any case, which unsets it (UNSET: as if it had never been set);
- bufpolicy and bufresize take one of their words.

Every option a D program may set is kept, by name, with its value as a number (or word); what trapscope cannot
honour (buffer sizes, rates of a consumer that reads a finished run) is accepted and has no effect.
"""

from __future__ import annotations

import re

INT64_MAX = (1 << 63) - 1
UNSET = "unset"  # what "false" sets a switch to: DTRACEOPT_UNSET
BAD_VALUE = "Invalid value for specified option"
BAD_NAME = "Invalid option name"

SIZE_OPTIONS = {"aggsize", "bufsize", "dynvarsize", "specsize", "strsize"}
RATE_OPTIONS = {"aggrate", "cleanrate", "statusrate", "switchrate"}
RUNTIME_OPTIONS = {
    "aggpercpu", "aggsortkey", "aggsortkeypos", "aggsortpos", "aggsortrev", "aggzoom", "aggpack", "cpu",
    "flowindent", "jstackframes", "jstackstrsize", "nspec", "quiet", "rawbytes", "stackframes", "stackindent",
    "ustackframes", "destructive", "zdefs", "defaultargs", "temporal",
}  # fmt: skip
# Switches, which also take a yes or a no in words (quiet=on, flowindent=disabled, aggsortkey=false)
SWITCH_OPTIONS = {"aggpercpu", "aggsortkey", "aggsortrev", "aggzoom", "aggpack", "flowindent", "quiet", "rawbytes",
                  "destructive", "zdefs"}  # fmt: skip
_YES = {"yes", "true", "enable", "enabled", "on", "set"}
_NO = {"no", "false", "disable", "disabled", "off", "unset"}
WORD_OPTIONS = {"bufpolicy": ("fill", "switch", "ring"), "bufresize": ("auto", "manual")}
DEFAULTS = {"nspec": 1, "cleanrate": 1_000_000_000 // 101, "specsize": 1 << 20}  # dt_options.c's defaults

_SIZE_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_RATE_SUFFIX = {
    "": 1, "ns": 1, "nsec": 1, "us": 1_000, "usec": 1_000, "ms": 1_000_000, "msec": 1_000_000,
    "s": 1_000_000_000, "sec": 1_000_000_000, "m": 60_000_000_000, "min": 60_000_000_000,
    "h": 3_600_000_000_000, "hour": 3_600_000_000_000, "d": 86_400_000_000_000, "day": 86_400_000_000_000,
}  # fmt: skip
_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(.*)")


class OptionError(ValueError):
    """An option libdtrace refuses; str() is its message."""


def known(name: str) -> bool:
    return name in SIZE_OPTIONS or name in RATE_OPTIONS or name in RUNTIME_OPTIONS or name in WORD_OPTIONS


def option_value(name: str, value: str | None) -> int | str:
    """The value dtrace keeps for `name=value` (value None: the option named alone); OptionError if refused."""
    if not known(name):
        raise OptionError(f"failed to set option '{name}': {BAD_NAME}")
    try:
        if name in WORD_OPTIONS:
            if value not in WORD_OPTIONS[name]:
                raise ValueError
            return value
        if name in SIZE_OPTIONS:
            return _scaled(value, _SIZE_SUFFIX, lambda n, scale: n * scale)
        if name in RATE_OPTIONS:
            return _rate(value)
        if value is None:
            return 1
        if name in SWITCH_OPTIONS and value.lower() in _YES:
            return 1
        if name in SWITCH_OPTIONS and value.lower() in _NO:
            return UNSET
        return _scaled(value, {"": 1}, lambda n, scale: n)
    except ValueError:
        shown = f" to '{value}'" if value is not None else ""
        raise OptionError(f"failed to set option '{name}'{shown}: {BAD_VALUE}") from None


def _scaled(value: str | None, suffixes: dict[str, int], apply) -> int:
    """strtoull's number and a suffix: a sign, an overflow or an unknown suffix is an invalid value."""
    match = _NUMBER.fullmatch(value or "")
    if match is None or match.group(2).lower() not in suffixes:
        raise ValueError
    number = int(match.group(1), 0) if not re.fullmatch(r"0[0-7]+", match.group(1)) else int(match.group(1), 8)
    result = apply(number, suffixes[match.group(2).lower()])
    if number > INT64_MAX or result > INT64_MAX:
        raise ValueError
    return result


def _rate(value: str | None) -> int:
    """A rate as a period in ns: "2000hz" is 500,000 ns, "10ms" is 10,000,000 ns, a bare number is ns."""
    if value is not None and value.lower().endswith("hz"):
        hertz = _scaled(value[:-2], {"": 1}, lambda n, scale: n)
        if hertz == 0:
            raise ValueError
        return max(1_000_000_000 // hertz, 1)
    return _scaled(value, _RATE_SUFFIX, lambda n, scale: n * scale)


def get(options: dict[str, int | str], name: str) -> int:
    """An option's number, or dtrace's default for it."""
    value = options.get(name, DEFAULTS.get(name, 0))
    return value if isinstance(value, int) else 0
