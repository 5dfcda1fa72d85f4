"""Words for the event log: the one place where an event's facts become text for people to read.

An event carries data (sim/core/log.Event.data): a typed payload, a kernel function's return value, or None.
Views, DTrace providers and exporters read those facts; only the narrative (the stepper's sentences, the JSON
API's `detail`, the CLI) turns them into words, here. A payload type gets its words by registering a function
with `words.register` in the narrative module of the layer that defines it; an event with no facts may still
have fixed words, keyed by its (kind, name) in CONSTANT_WORDS.
"""

from __future__ import annotations

from functools import singledispatch

from sim.core.log import Event

# (kind, name) -> the words of an event that carries no data (most of them are instructions and hooks whose
# meaning does not change from one call to the next).
CONSTANT_WORDS: dict[tuple[str, str], str] = {}


@singledispatch
def words(data: object) -> str:
    """The words of one event's data (a payload type registers its own)."""
    raise TypeError(f"the narrative has no words for {type(data).__name__}")


@words.register
def _(data: int) -> str:
    return str(data)


def detail(event: Event) -> str:
    """The event's facts in words (what its `detail` text used to be): "" when it has none."""
    data = event.data
    if data is None:
        return CONSTANT_WORDS.get((event.kind, event.name), "")
    return words(data)


from sim.narrative import kern, results, user, vm  # noqa: E402, F401 - each layer's payloads register their words
