"""Where each profile constant comes from, read from sim/machine/profiles.py itself: the comment written next to
a constant (on its line, or the comment lines just above it) is its source, and the comment on a Profile field
says what the constant is. Reading the module's own text keeps one place for a figure and its source.
"""

from __future__ import annotations

import ast
import functools
import inspect
from dataclasses import dataclass, fields

from sim.machine import profiles
from sim.machine.profiles import PROFILES, Profile


@dataclass(frozen=True)
class Constant:
    name: str
    value: object
    meaning: str  # what the constant is (the Profile field's comment)
    source: str  # where its figure comes from (the comment next to it in the profile)
    inherited_from: str = ""  # a profile made with replace(): the profile whose figure it keeps


def _comment(line: str) -> str:
    """The comment of one source line, if it has one outside a string (profiles.py keeps '#' out of strings)."""
    code, hash_, text = line.partition("#")
    return text.strip() if hash_ and code.count('"') % 2 == 0 else ""


@functools.cache
def _module() -> tuple[list[str], ast.Module]:
    text = inspect.getsource(profiles)
    return text.splitlines(), ast.parse(text)


def _block_above(lines: list[str], lineno: int, stop: int) -> str:
    """The comment lines just above line `lineno` (not above `stop`), joined."""
    above = []
    for number in range(lineno - 1, stop, -1):
        if lines[number - 1].lstrip()[:1] != "#":
            break
        above.insert(0, _comment(lines[number - 1]))
    return " ".join(above)


@functools.cache
def _fields() -> dict[str, tuple[str, str]]:
    """Profile field -> (its comment in the class body, the comment block above it)."""
    lines, tree = _module()
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Profile")
    found, previous, block = {}, cls.lineno, ""
    for item in cls.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            inline, above = _comment(lines[item.lineno - 1]), _block_above(lines, item.lineno, previous)
            block = above or ("" if inline else block)  # a block comment covers the fields below it
            found[item.target.id] = (inline, block)
        previous = item.end_lineno
    return found


def meanings() -> dict[str, str]:
    """Profile field -> its comment in the class body."""
    return {name: inline for name, (inline, _) in _fields().items()}


@functools.cache
def _keyword_sources() -> dict[str, tuple[str, dict[str, str]]]:
    """Profile name -> (the profile it replaces, or "", {constant -> its source comment})."""
    lines, tree = _module()
    found = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        keywords = {kw.arg: kw for kw in call.keywords if kw.arg}
        name_kw = keywords.get("name")
        if name_kw is None or not isinstance(name_kw.value, ast.Constant):
            continue
        base = call.args[0].id if call.args and isinstance(call.args[0], ast.Name) else ""
        sources, previous_end, block = {}, call.lineno, ""
        for arg, kw in keywords.items():
            above = _block_above(lines, kw.lineno, previous_end)
            inline = " ".join(filter(None, (_comment(lines[n - 1]) for n in range(kw.lineno, kw.end_lineno + 1))))
            # A comment block above a run of constants is the source of each, until one has a comment of its own
            # (profiles.py writes a group's source once, above its first constant).
            if above:
                block = above
            elif inline:
                block = ""
            sources[arg] = " ".join(filter(None, (block, inline)))
            previous_end = kw.end_lineno
        base_name = next((p.name for p in PROFILES.values() if getattr(profiles, base, None) is p), "")
        found[name_kw.value.value] = (base_name, sources)
    return found


def constants(profile: Profile) -> list[Constant]:
    """Every constant of the profile, in the Profile's field order, with its meaning and source."""
    base, sources = _keyword_sources().get(profile.name, ("", {}))
    base_sources = _keyword_sources().get(base, ("", {}))[1]
    out = []
    for field in fields(Profile):
        if field.name in ("name", "description", "memory"):
            continue
        own = sources.get(field.name)
        inherited = base if own is None and base else ""
        source = own if own is not None else base_sources.get(field.name)
        if source is None:  # the Profile's default: its source is the field's own comment in the class
            source = "the default: " + _fields()[field.name][1]
        out.append(
            Constant(field.name, getattr(profile, field.name), meanings().get(field.name, ""), source, inherited)
        )
    return out
