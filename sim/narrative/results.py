"""The words of what a kernel function returns (a @kfunc exit event's data): what str(result) said of the live
result, made from the facts the event records of it (sim/core/kfunc.py's result_facts)."""

from __future__ import annotations

from sim.core import events as ev
from sim.narrative import words


@words.register
def _(data: ev.PageRef) -> str:
    return f"page {data.phys_addr:#x}"


@words.register
def _(data: ev.ObjectRef) -> str:
    return f"object {data.id}"


@words.register
def _(data: ev.VmspaceRef) -> str:
    return f"vmspace {data.id}"


@words.register
def _(data: ev.VnodeRef) -> str:
    return f"vnode {data.path}"


@words.register
def _(data: ev.BufRef) -> str:
    return f"buf {data.path} block {data.lblkno}"


@words.register
def _(data: ev.EntryRef) -> str:
    return f"<entry {words(data.entry)}>"


@words.register
def _(data: tuple) -> str:
    """Several results, as Python prints a tuple: "(0, 3)", a one-tuple "(0,)", None as "None"."""
    if data.__class__ is not tuple:  # a payload type that registered no words of its own
        raise TypeError(f"the narrative has no words for {type(data).__name__}")
    shown = ["None" if item is None else words(item) for item in data]
    return "(" + ", ".join(shown) + ("," if len(shown) == 1 else "") + ")"
