"""What an error message may quote of a bad value: a short prefix, never the whole input.

A message names the value it refuses (`query parameter 'bs' must be a size ..., not 'x'`); a 60 KB value would
make a 120 KB error page (it is shown twice), and reflecting whole input invites abuse. So every message an
error page or panel shows goes through `shown()`: each long run of non-blank characters is cut to its first
MAX_QUOTED characters, with its length said, and the whole message to MAX_MESSAGE characters.
"""

from __future__ import annotations

import re

MAX_QUOTED = 40  # characters of one value a message shows
MAX_MESSAGE = 1000  # characters of a whole message (a command's usage text is the longest, ~400)
_LONG_WORD = re.compile(rf"\S{{{MAX_QUOTED + 20},}}")  # a path or a function name of 60 characters is kept


def shown(message: str) -> str:
    """The message as it may be shown: long values cut to a prefix, the whole bounded."""
    text = _LONG_WORD.sub(lambda m: f"{m.group(0)[:MAX_QUOTED]}… ({len(m.group(0)):,} characters)", message)
    return text if len(text) <= MAX_MESSAGE else f"{text[:MAX_MESSAGE]}… ({len(text):,} characters)"
